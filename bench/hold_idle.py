#!/usr/bin/env python3
"""Holds N idle TCP connections to 127.0.0.1:PORT until SIGTERM/SIGINT.

usage: hold_idle.py PORT N READY_FILE
Opens the connections (sending nothing), then writes the number held to READY_FILE
and sleeps. Raise `ulimit -n` first: each connection is one fd here.
"""
import signal
import socket
import sys
import time


def main() -> int:
    port, n, ready = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    held = []
    for i in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.connect(("127.0.0.1", port))
        except OSError as e:
            print(f"hold_idle: connection {i} failed: {e}", file=sys.stderr)
            s.close()
            break
        held.append(s)
    with open(ready, "w") as f:
        f.write(f"{len(held)}\n")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
