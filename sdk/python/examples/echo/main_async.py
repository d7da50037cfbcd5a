"""The echo function as an asyncio handler (same behaviour as main.py)."""

import asyncio
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))  # run from a checkout

import sluice_sdk as sluice  # noqa: E402


async def handle(event: sluice.Event, ctx: sluice.Context) -> sluice.Response:
    if event.data == b"poison":
        raise sluice.Reject("poison")
    await asyncio.sleep(0)
    ctx.info(f"echo {event.id}")
    if event.data == b"fanout":
        ctx.emit(b"FANOUT", type="sluice.echo.fanout", id=event.id + "-fanout",
                 source="/sluice/echo", content_type="text/plain")
    return sluice.Response(event.data.upper(), event.data_content_type)


if __name__ == "__main__":
    sluice.run(handle)
