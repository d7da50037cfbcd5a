"""bench/runtimes baseline: a bare length-prefixed pipe echo loop in Python.

Reads frames (a 4-byte big-endian length, then that many bytes) from stdin and writes
each one back unchanged, in one write. Exits 0 at the end of stdin. No sluice code: the
floor a Python stdio worker cannot beat (stdio-python in runtimes_bench.cc).
"""

import os
import sys


def main():
    r = sys.stdin.buffer
    while True:
        head = r.read(4)
        if len(head) < 4:
            return 0
        n = int.from_bytes(head, "big")
        body = r.read(n)
        if len(body) < n:
            return 1
        os.write(1, head + body)


if __name__ == "__main__":
    sys.exit(main())
