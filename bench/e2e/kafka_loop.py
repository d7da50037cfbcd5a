"""The plain confluent-kafka Python consumer loop a user writes instead of sluice.

    kafka_loop.py BOOTSTRAP TOPIC GROUP COUNT MAX_SECONDS

poll() one message at a time, call the same no-op handler as the Python SDK's no-op
example (sdk/python/examples/noop), store the offset after it (auto commit of stored
offsets, like sluice's at-least-once). The clock starts at the first message (group
join not counted) and stops at the COUNT-th. Prints one line:

    RESULT e2e events=N seconds=S events_per_s=R cpu_us_per_event=C start_s=T0

(cpu_us_per_event: this process, over the same span.)
"""

import sys
import time

from confluent_kafka import Consumer


def handle(event):
    return None


def main():
    bootstrap, topic, group, count, max_seconds = sys.argv[1:6]
    count, max_seconds = int(count), float(max_seconds)
    c = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": group,
        "auto.offset.reset": "earliest",
        "enable.auto.offset.store": False,
    })
    c.subscribe([topic])
    begin = time.monotonic()
    deadline = begin + max_seconds
    n = 0
    t0 = c0 = None
    while n < count and time.monotonic() < deadline:
        m = c.poll(1.0)
        if m is None or m.error():
            continue
        if t0 is None:
            t0, c0 = time.monotonic(), time.process_time()
        handle(m.value())
        c.store_offsets(m)
        n += 1
    t1, c1 = time.monotonic(), time.process_time()
    c.close()
    if n < count:
        print(f"RESULT e2e failed: {n} of {count} within {max_seconds:.0f} s", file=sys.stderr)
        return 1
    events = count - 1
    secs = t1 - t0
    print(f"RESULT e2e events={events} seconds={secs:.3f} events_per_s={events / secs:.0f} "
          f"cpu_us_per_event={1e6 * (c1 - c0) / events:.1f} start_s={t0 - begin:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
