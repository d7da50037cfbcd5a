#!/usr/bin/env python3
"""The Python SDK worker alone, no engine and no broker: how many no-op invocations per
second it answers on its pipes, and its CPU time per event.

    sdk_direct.py [--count N] [--window W] [--rounds R] [--one-write] [--worker CMD...]

Spawns the worker (default: sdk/python/examples/noop/main.py with this interpreter),
reads its Hello, answers HelloAck, then keeps W invocations in flight the way sluice's
stdio runtime does: every Invoke goes out in its own write(), and each Result that comes
back is followed by the next Invoke (`--one-write`: the Invokes made for one read of
results go out in one write). W defaults to the worker's advertised max_inflight (the
most sluice sends one worker). The Invoke frames carry what sluice sends for a Kafka
event of 100 bytes (schemas/worker.proto; built once, before the clock starts).

The clock runs from the first Invoke to the N-th Result; the worker's CPU (utime +
stime from /proc/PID/stat) over the same span. Prints per round and the medians:

    RESULT sdk_direct events=N window=W events_per_s=R cpu_us_per_event=C

Needs protobuf (sdk/python/.venv from sdk/test.sh, or any python3 with protobuf).
"""

import argparse
import os
import select
import statistics
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "sdk", "python"))

from sluice_sdk import _proto as pb  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime


def invoke_frames(count):
    """count encoded Invoke frames, ids 1..count, each a 100-byte Kafka event."""
    data = bytes(97 + i % 26 for i in range(100))
    frame = pb.Frame()
    inv = frame.invoke
    ev = inv.event
    ev.source, ev.spec_version, ev.type = "kafka://bench/e2e", "1.0", "sluice.kafka.record"
    ev.data, ev.broker, ev.topic = data, "kafka", "e2e-bench"
    ev.attempt = 1
    inv.timeout_ms = 30000
    out = []
    for i in range(1, count + 1):
        inv.id = i
        ev.id = f"e2e-bench-{i % 6}-{i}"
        ev.partition = i % 6
        ev.offset = i
        ev.broker_timestamp_ms = ev.first_attempt_time_ms = 1796000000000 + i
        out.append(pb.encode_frame(frame))
    return out


def read_exact(fd, n):
    buf = b""
    while len(buf) < n:
        chunk = os.read(fd, n - len(buf))
        if not chunk:
            raise SystemExit("error: the worker closed its stdout")
        buf += chunk
    return buf


def one_round(cmd, count, window, one_write):
    frames = invoke_frames(count)
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)
    rfd, wfd = p.stdout.fileno(), p.stdin.fileno()
    hello = pb.decode_frame(read_exact(rfd, int.from_bytes(read_exact(rfd, 4), "big")))
    if hello.WhichOneof("kind") != "hello":
        raise SystemExit(f"error: expected Hello, got {hello.WhichOneof('kind')}")
    window = window or hello.hello.max_inflight or 16
    os.write(wfd, pb.encode_frame(pb.Frame(hello_ack=pb.HelloAck(protocol_version=1, function="noop"))))
    sent = done = 0
    buf = b""
    c0 = cpu_seconds(p.pid)
    t0 = time.perf_counter()
    first = min(window, count)
    for f in frames[:first]:
        os.write(wfd, f)
    sent = first
    while done < count:
        chunk = os.read(rfd, 1 << 16)
        if not chunk:
            raise SystemExit(f"error: the worker closed its stdout after {done} results")
        buf = buf + chunk if buf else chunk
        pos, end, got = 0, len(buf), 0
        while end - pos >= 4:
            n = int.from_bytes(buf[pos:pos + 4], "big")
            if end - pos - 4 < n:
                break
            if buf[pos + 4] == 0x22:  # Frame.result (field 4)
                body = buf[pos + 4:pos + 4 + n]
                if b"\x10\x01" not in body:  # status OK
                    raise SystemExit(f"error: a Result that is not OK: {pb.decode_frame(body)}")
                got += 1
            pos += 4 + n
        buf = buf[pos:]
        done += got
        more = min(got, count - sent)
        if more:
            if one_write:
                os.write(wfd, b"".join(frames[sent:sent + more]))
            else:
                for f in frames[sent:sent + more]:
                    os.write(wfd, f)
            sent += more
    secs = time.perf_counter() - t0
    cpu = cpu_seconds(p.pid) - c0
    p.stdin.close()
    if p.wait(timeout=30) != 0:
        raise SystemExit(f"error: the worker exited with status {p.returncode}")
    return count / secs, 1e6 * cpu / count, window


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--count", type=int, default=100000)
    ap.add_argument("--window", type=int, default=0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--one-write", action="store_true")
    ap.add_argument("--worker", nargs=argparse.REMAINDER,
                    default=[sys.executable, os.path.join(REPO, "sdk/python/examples/noop/main.py")])
    a = ap.parse_args()
    rates, cpus = [], []
    for r in range(a.rounds):
        rate, cpu, window = one_round(a.worker, a.count, a.window, a.one_write)
        rates.append(rate)
        cpus.append(cpu)
        print(f"round {r + 1}: {rate:,.0f} events/s, {cpu:.2f} cpu_us/event (window {window})", flush=True)
    print(f"RESULT sdk_direct events={a.count} window={window} events_per_s={statistics.median(rates):.0f} "
          f"cpu_us_per_event={statistics.median(cpus):.2f}")


if __name__ == "__main__":
    main()
