#!/usr/bin/env python3
"""Helpers of engine_scaling.sh (see README.md). Times are unix seconds (CLOCK_REALTIME),
the clock the script and sleep_function.c stamp with.

  sample PORT FUNCTION OUT
      Scrapes http://127.0.0.1:PORT/metrics every 100 ms until SIGTERM and appends one
      line per scrape to OUT:  t workers desired success other lag
      (workers = sluice_workers, desired = sluice_workers_desired, success / other =
      sluice_invocations_total of FUNCTION with outcome success / any other outcome,
      lag = sum of sluice_consumer_lag). A failed scrape writes nothing.

  load SLUICE CONFIG TOPIC RATE SECONDS PERIOD JITTER PAYLOAD
      A noisy flat load: every PERIOD seconds, starts `SLUICE publish -c CONFIG TOPIC
      PAYLOAD --count n` (not waiting for it) with n = RATE * PERIOD * U(1-JITTER,
      1+JITTER), for SECONDS; then waits for every publisher and prints
      `published=N failed=K ticks=T late_ticks=L t_start=.. t_end=..`
      (late = a tick started more than PERIOD/2 after its due time).

  analyze FILE T0 T1 [COUNT] [WINDOW]
      Over the samples with T0 <= t <= T1, prints key=value:
        first_t   first sample with success above its value at T0, minus T0 (s; -1:
                  none); the value at T0 is the last sample before T0, else 0
        drain_t   first sample with success - success(T0) >= COUNT, minus T0 (-1: never)
        ws, ws_desired   integral of sluice_workers / sluice_workers_desired over
                  [T0, T1] (worker-seconds; each sample held until the next)
        ws_drain, ws_desired_drain   the same over [T0, T0 + drain_t]
        changes, changes_desired   direction changes (up after down or down after up)
                  of sluice_workers / sluice_workers_desired
        max_in_window, max_in_window_desired   most direction changes inside any
                  WINDOW (30) seconds
        workers_min/max, desired_min/max, lag_mean, lag_max, success, other
"""
import random
import re
import signal
import subprocess
import sys
import time
import urllib.request

LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)')


def scrape(port, fn):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=1) as r:
        text = r.read().decode()
    workers = desired = success = other = lag = 0.0
    want = f'function="{fn}"'
    for line in text.splitlines():
        m = LINE.match(line)
        if not m:
            continue
        name, labels, value = m.group(1), m.group(2) or "", float(m.group(3))
        if name == "sluice_consumer_lag":
            lag += value
        elif want not in labels:
            continue
        elif name == "sluice_workers":
            workers = value
        elif name == "sluice_workers_desired":
            desired = value
        elif name == "sluice_invocations_total":
            if 'outcome="success"' in labels:
                success += value
            else:
                other += value
    return workers, desired, success, other, lag


def sample(port, fn, out):
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    with open(out, "a", buffering=1) as f:
        nxt = time.time()
        while not stop:
            t = time.time()
            try:
                w, d, s, o, lag = scrape(port, fn)
                f.write(f"{t:.3f} {w:g} {d:g} {s:g} {o:g} {lag:g}\n")
            except Exception:  # not up yet, or going down
                pass
            nxt += 0.1
            time.sleep(max(0.0, nxt - time.time()))


def load(sluice, config, topic, rate, seconds, period, jitter, payload):
    rng = random.Random(7)
    procs, published, ticks, late = [], 0, 0, 0
    t_start = time.time()
    due = t_start
    while due < t_start + seconds:
        now = time.time()
        if now < due:
            time.sleep(due - now)
        elif now - due > period / 2:
            late += 1
        n = max(1, round(rate * period * rng.uniform(1 - jitter, 1 + jitter)))
        procs.append((n, subprocess.Popen([sluice, "publish", "-c", config, topic, payload,
                                           "--count", str(n)],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)))
        ticks += 1
        due += period
        # reap the finished ones so a long run holds no zombies
        still = []
        for n_, p in procs:
            if p.poll() is None:
                still.append((n_, p))
            elif p.returncode == 0:
                published += n_
            else:
                sys.stderr.write(p.stderr.read().decode())
        procs = still
    failed = 0
    for n, p in procs:
        if p.wait() == 0:
            published += n
        else:
            failed += n
            sys.stderr.write(p.stderr.read().decode())
    t_end = time.time()
    print(f"published={published} failed={failed} ticks={ticks} late_ticks={late} "
          f"t_start={t_start:.3f} t_end={t_end:.3f}")


def read(path, t0, t1):
    """The samples in [t0, t1], and the counters' values at t0: those of the last
    sample before t0, or zeros when there is none (a process that just started)."""
    rows, base = [], (0.0, 0.0)
    with open(path) as f:
        for line in f:
            p = line.split()
            if len(p) != 6:
                continue
            r = [float(x) for x in p]
            if r[0] < t0:
                base = (r[3], r[4])
            elif r[0] <= t1:
                rows.append(r)
    return rows, base


def integral(rows, col, t_end):
    total = 0.0
    for i, r in enumerate(rows):
        nxt = rows[i + 1][0] if i + 1 < len(rows) else t_end
        total += r[col] * max(0.0, min(nxt, t_end) - r[0])
        if nxt >= t_end:
            break
    return total


def changes(rows, col, window):
    """Direction changes of a column, and the most of them inside any `window` s."""
    at, last_value, last_dir = [], None, 0
    for r in rows:
        v = r[col]
        if last_value is not None and v != last_value:
            d = 1 if v > last_value else -1
            if last_dir and d != last_dir:
                at.append(r[0])
            last_dir = d
        last_value = v
    most, j = 0, 0
    for i in range(len(at)):
        while at[i] - at[j] > window:
            j += 1
        most = max(most, i - j + 1)
    return len(at), most


def analyze(path, t0, t1, count, window):
    rows, (s0, o0) = read(path, t0, t1)
    if not rows:
        print("samples=0")
        return
    first = next((r[0] - t0 for r in rows if r[3] > s0), -1)
    drain = next((r[0] - t0 for r in rows if count > 0 and r[3] - s0 >= count), -1)
    out = {
        "samples": len(rows),
        "first_t": f"{first:.2f}",
        "drain_t": f"{drain:.2f}",
        "ws": f"{integral(rows, 1, t1):.1f}",
        "ws_desired": f"{integral(rows, 2, t1):.1f}",
    }
    if drain >= 0:
        out["ws_drain"] = f"{integral(rows, 1, t0 + drain):.1f}"
        out["ws_desired_drain"] = f"{integral(rows, 2, t0 + drain):.1f}"
    c, m = changes(rows, 1, window)
    cd, md = changes(rows, 2, window)
    out.update({
        "changes": c, "max_in_window": m, "changes_desired": cd, "max_in_window_desired": md,
        "workers_min": f"{min(r[1] for r in rows):g}", "workers_max": f"{max(r[1] for r in rows):g}",
        "desired_min": f"{min(r[2] for r in rows):g}", "desired_max": f"{max(r[2] for r in rows):g}",
        "lag_mean": f"{sum(r[5] for r in rows) / len(rows):.0f}",
        "lag_max": f"{max(r[5] for r in rows):g}",
        "success": f"{rows[-1][3] - s0:g}", "other": f"{rows[-1][4] - o0:g}",
    })
    print(" ".join(f"{k}={v}" for k, v in out.items()))


def main():
    a = sys.argv[1:]
    if a[:1] == ["sample"] and len(a) == 4:
        sample(int(a[1]), a[2], a[3])
    elif a[:1] == ["load"] and len(a) == 9:
        load(a[1], a[2], a[3], float(a[4]), float(a[5]), float(a[6]), float(a[7]), a[8])
    elif a[:1] == ["analyze"] and len(a) in (4, 5, 6):
        analyze(a[1], float(a[2]), float(a[3]), int(a[4]) if len(a) > 4 else 0,
                float(a[5]) if len(a) > 5 else 30.0)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
