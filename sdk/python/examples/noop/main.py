"""The no-op function: returns success with no output and logs nothing (for benchmarks)."""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))  # run from a checkout

import sluice_sdk as sluice  # noqa: E402


def handle(event):
    return None


if __name__ == "__main__":
    sluice.run(handle)
