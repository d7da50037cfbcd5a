"""The no-op function as an asyncio handler (same behaviour as main.py)."""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))  # run from a checkout

import sluice_sdk as sluice  # noqa: E402


async def handle(event):
    return None


if __name__ == "__main__":
    sluice.run(handle)
