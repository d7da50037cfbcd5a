"""Watches one `sluice run` drain a pre-published backlog, from outside (stdlib only).

    watch.py METRICS_PORT PID COUNT MAX_SECONDS [BROKER_PID]

Polls http://127.0.0.1:METRICS_PORT/metrics on one keep-alive connection every 10 ms
and sums sluice_invocations_total{outcome="success"}. The clock starts at the first
poll that sees an invocation (so broker connection, group join and worker start-up are
not counted) and stops when COUNT succeeded. The engine's CPU over the same span is
utime + stime of PID (/proc/PID/stat: the engine's own threads, not its worker
processes). Over the same span it also reads the CPU of the engine's worker processes
(every descendant of PID, plus the children it reaped), of BROKER_PID (the broker's
process, when given) and the machine's idle share (/proc/stat), so a slow row shows
whether it waited or ran out of CPU. Prints one line:

    RESULT e2e events=N seconds=S events_per_s=R cpu_us_per_event=C worker_us_per_event=W
           broker_us_per_event=B idle_pct=I start_s=T0 with_start=0|1

(broker_us_per_event is 0 without BROKER_PID.)

with_start=1: the first poll already saw a tenth of COUNT done (a drain too short to
time from its first invocation), so the span and the CPU start at the engine's start.

Exits 1 when COUNT is not reached within MAX_SECONDS (or PID ended first).
"""

import http.client
import os
import sys
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # utime and stime are fields 14 and 15 of stat(5); fields[0] here is field 3.
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def stat_fields(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None


def descendants(pid):
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{p}/task")
        except OSError:
            continue
        for t in tasks:
            try:
                with open(f"/proc/{p}/task/{t}/children") as f:
                    kids = [int(k) for k in f.read().split()]
            except OSError:
                continue
            out += kids
            todo += kids
    return out


def worker_cpu_seconds(pid):
    """CPU of PID's descendants alive now, plus what PID reaped (cutime + cstime)."""
    total = 0
    f = stat_fields(pid)
    if f:
        total += int(f[13]) + int(f[14])
    for k in descendants(pid):
        kf = stat_fields(k)
        if kf:
            total += int(kf[11]) + int(kf[12])
    return total / CLK_TCK


def machine_times():
    """(idle, total) jiffies of all CPUs (/proc/stat)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return v[3] + v[4], sum(v[:8])


def age_seconds(pid):
    """Seconds since PID started (/proc/PID/stat starttime against /proc/uptime)."""
    with open(f"/proc/{pid}/stat") as f:
        start = int(f.read().rsplit(")", 1)[1].split()[19]) / CLK_TCK
    with open("/proc/uptime") as f:
        return float(f.read().split()[0]) - start


def succeeded(conn):
    conn.request("GET", "/metrics")
    body = conn.getresponse().read().decode()
    total = 0.0
    for line in body.splitlines():
        if line.startswith("sluice_invocations_total{") and 'outcome="success"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return int(total)


def main():
    port, pid, count, max_seconds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
    broker = int(sys.argv[5]) if len(sys.argv) > 5 and sys.argv[5] else 0
    broker_cpu = (lambda: cpu_seconds(broker)) if broker else (lambda: 0.0)
    begin = time.monotonic() - age_seconds(pid)  # the engine's start
    deadline = time.monotonic() + max_seconds
    conn = None
    t0 = n0 = c0 = w0 = b0 = m0 = None
    done = 0
    while time.monotonic() < deadline:
        if not os.path.exists(f"/proc/{pid}"):
            break
        try:
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", int(port), timeout=5)
            done = succeeded(conn)
        except (OSError, http.client.HTTPException):
            conn = None
            time.sleep(0.05)
            continue
        now = time.monotonic()
        if t0 is None and done > 0:
            t0, n0, c0 = now, done, cpu_seconds(pid)
            w0, b0, m0 = worker_cpu_seconds(pid), broker_cpu(), machine_times()
        if done >= count:
            c1, w1, b1, m1 = cpu_seconds(pid), worker_cpu_seconds(pid), broker_cpu(), machine_times()
            if n0 * 10 >= count:
                # The first poll already saw a tenth of the backlog done: the drain is
                # too short to time from inside; time it from the engine's start.
                t0, n0, c0, w0, b0, whole = begin, 0, 0.0, 0.0, 0.0, 1
            else:
                whole = 0
            events = count - n0
            secs = now - t0
            rate = events / secs if secs > 0 else 0.0
            per = (lambda c: 1e6 * c / events) if events > 0 else (lambda c: 0.0)
            idle = 100.0 * (m1[0] - m0[0]) / max(1, m1[1] - m0[1])
            print(f"RESULT e2e events={events} seconds={secs:.3f} events_per_s={rate:.0f} "
                  f"cpu_us_per_event={per(c1 - c0):.1f} worker_us_per_event={per(w1 - w0):.1f} "
                  f"broker_us_per_event={per(b1 - b0):.1f} idle_pct={idle:.0f} "
                  f"start_s={t0 - begin:.2f} with_start={whole}")
            return 0
        time.sleep(0.01)
    print(f"RESULT e2e failed: {done} of {count} succeeded within {max_seconds:.0f} s", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
