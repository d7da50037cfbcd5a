"""Test handlers, chosen by argv[1]; run as a worker process by the tests."""

import asyncio
import os
import sys
import threading
import time

import sluice_sdk as sluice

mode = sys.argv[1]

if mode == "errors":
    def handle(event, ctx):
        if event.data == b"retry":
            raise sluice.Retry("boom", after_ms=1500)
        if event.data == b"raise":
            raise ValueError("bad value")
        if event.data == b"str":
            return "héllo"
        if event.data == b"json":
            return {"a": [1, 2]}
        if event.data == b"none":
            return None
        if event.data == b"huge":
            return b"x" * (sluice.MAX_FRAME_BYTES + 1)
        return event.data
    sluice.run(handle)

elif mode == "print":
    def handle(event):
        print("printed by", event.id)
        sys.stdout.write("partial ")
        sys.stdout.write("line\n")
        os.write(1, b"raw fd 1 write\n")  # must land on stderr, not in the frame stream
        return b"ok"
    sluice.run(handle)

elif mode == "concurrent-async":
    n = int(sys.argv[2])
    seen = 0
    all_in = None

    async def handle(event, ctx):
        global seen, all_in
        if all_in is None:
            all_in = asyncio.Event()
        seen += 1
        if seen == n:
            all_in.set()
        await all_in.wait()  # completes only when all n are in flight at once
        return event.data
    sluice.run(handle)

elif mode == "concurrent-sync":
    n = int(sys.argv[2])
    barrier = threading.Barrier(n, timeout=30)

    def handle(event, ctx):
        barrier.wait()  # raises BrokenBarrierError unless n run at once
        return event.data
    sluice.run(handle, threads=n)

elif mode == "cancel-async":
    async def handle(event, ctx):
        if event.data == b"hang":
            ctx.info("started")
            await asyncio.sleep(3600)
        return event.data
    sluice.run(handle)

elif mode == "cancel-sync":
    def handle(event, ctx):
        if event.data == b"hang":
            ctx.info("started")
            while not ctx.cancelled:
                time.sleep(0.01)
            return b"stopped"
        return event.data
    sluice.run(handle, threads=int(sys.argv[2]) if len(sys.argv) > 2 else None)

elif mode == "max-concurrency":
    lock = threading.Lock()
    running = 0
    most = 0
    two_at_once = threading.Event()

    def handle(event):
        global running, most
        with lock:
            running += 1
            most = max(most, running)
            if running == 2:
                two_at_once.set()
        two_at_once.wait(30)  # the first call waits here until a second one runs
        time.sleep(0.05)  # the call's work: time for a third one to start, were it allowed
        with lock:
            seen = most
            running -= 1
        return b"%d" % seen
    sluice.run(handle, threads=int(sys.argv[2]))

else:
    raise SystemExit(f"unknown mode {mode}")
