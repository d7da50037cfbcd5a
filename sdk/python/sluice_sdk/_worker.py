"""The worker side of the stdio protocol v1: handshake, invocations, logs, shutdown.

Threads: the asyncio loop runs in the thread that called `run`; one daemon thread reads
frames from stdin; sync handlers run in a thread pool. Frames are written to the private
copy of the original stdout under a lock, from any of those threads.
"""

import asyncio
import concurrent.futures
import contextvars
import inspect
import json
import os
import sys
import threading
import time
import traceback
import uuid

from . import _proto as pb
from ._proto import ProtocolError

SDK_NAME = "sluice-python/0.1.0"
EXIT_PROTOCOL = 2
TTY_MESSAGE = ("sluice-sdk: stdout is a terminal, but it carries binary frames to sluice: this program "
               "is a sluice function worker (runtime: stdio) and is started by sluice")

_current = contextvars.ContextVar("sluice_invocation", default=None)


class Reject(Exception):
    """Raise to fail the invocation permanently: the event goes straight to the dead-letter queue."""


class Retry(Exception):
    """Raise to fail the invocation with a hint for the next attempt's delay."""

    def __init__(self, message="", after_ms=0):
        super().__init__(message)
        self.after_ms = int(after_ms)


class Response:
    """An explicit result: output bytes, its content type, and events to emit."""

    def __init__(self, output=b"", content_type="", emit=()):
        self.output = output
        self.content_type = content_type
        self.emit = list(emit)


def new_event(data, type, *, source="", id="", subject="", content_type="", extensions=None):
    """Build an Event to emit. id defaults to a random UUID; source to the function's."""
    ev = pb.Event(id=id or str(uuid.uuid4()), source=source, spec_version="1.0", type=type)
    if isinstance(data, str):
        data = data.encode("utf-8")
        content_type = content_type or "text/plain; charset=utf-8"
    ev.data = bytes(data)
    if content_type:
        ev.data_content_type = content_type
    if subject:
        ev.subject = subject
    for name, value in (extensions or {}).items():
        ev.extensions.add(name=name, value=str(value))
    return ev


_LEVELS = {"debug": pb.Log.DEBUG, "info": pb.Log.INFO, "warn": pb.Log.WARN,
           "warning": pb.Log.WARN, "error": pb.Log.ERROR}


class Context:
    """Per-invocation context: the invocation id, its deadline, logging and emitting."""

    def __init__(self, worker, invocation_id, timeout_ms):
        self._worker = worker
        self.id = invocation_id
        self.function = worker.function
        self.timeout_ms = timeout_ms
        self.deadline = time.monotonic() + timeout_ms / 1000.0 if timeout_ms else None
        self.emitted = []
        self._cancelled = False  # set on the loop thread, read by handlers on any thread

    @property
    def cancelled(self):
        """True once sluice has cancelled this invocation (its timeout passed). A sync
        handler should check it in long loops and return early; an async handler is
        cancelled with asyncio.CancelledError."""
        return self._cancelled

    def remaining(self):
        """Seconds left before sluice times this invocation out (None when unlimited)."""
        return None if self.deadline is None else max(0.0, self.deadline - time.monotonic())

    def log(self, message, level="info"):
        self._worker.log(message, level, self.id)

    def debug(self, message):
        self.log(message, "debug")

    def info(self, message):
        self.log(message, "info")

    def warn(self, message):
        self.log(message, "warn")

    def error(self, message):
        self.log(message, "error")

    def emit(self, data, type, **kwargs):
        """Publish one more event to the function's output when this invocation succeeds."""
        kwargs.setdefault("source", "/sluice/function/" + (self.function or "unknown"))
        ev = new_event(data, type, **kwargs)
        self.emitted.append(ev)
        return ev


class _PrintToLog:
    """Replaces sys.stdout: complete lines become INFO Log frames of the current invocation."""

    encoding = "utf-8"

    def __init__(self, worker):
        self._worker = worker
        self._lock = threading.Lock()
        self._partial = {}

    def write(self, text):
        inv = _current.get()
        key = inv.id if inv else 0
        with self._lock:
            buf = self._partial.pop(key, "") + text
            *lines, rest = buf.split("\n")
            if rest:
                self._partial[key] = rest
        for line in lines:
            self._worker.log(line, "info", key)
        return len(text)

    def flush(self):
        with self._lock:
            partial, self._partial = self._partial, {}
        for key, rest in partial.items():
            self._worker.log(rest, "info", key)

    def isatty(self):
        return False

    def writable(self):
        return True


def _arity(handler):
    try:
        params = inspect.signature(handler).parameters.values()
    except (TypeError, ValueError):
        return 2
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if any(p.kind == p.VAR_POSITIONAL for p in params) or len(positional) >= 2:
        return 2
    return 1


def _is_async(handler):
    return inspect.iscoroutinefunction(handler) or inspect.iscoroutinefunction(
        getattr(handler, "__call__", None))


class Worker:
    """Serves one handler over a frame stream (a binary reader and a writable fd)."""

    def __init__(self, handler, rstream, wfd, *, max_inflight=None, threads=None):
        self.handler = handler
        self._arity = _arity(handler)
        self._async = _is_async(handler)
        self._r = rstream
        self._wfd = wfd
        self._wlock = threading.Lock()
        self.function = ""
        if threads is None:
            threads = min(32, (os.cpu_count() or 1) + 4)
        self._threads = threads
        if max_inflight is None:
            # sync: twice the threads, so the next invocation waits in the process when a
            # thread frees up instead of a round trip away
            max_inflight = 0 if self._async else 2 * threads
        self.max_inflight = max_inflight
        self._inflight = {}  # id -> (task or None, ctx), under _ilock
        self._ilock = threading.Lock()
        self._on_drained = None  # set at shutdown: called when _inflight empties
        self._loop = None  # set while the loop runs: send() batches its frames
        self._loop_thread = None
        self._pending = []
        self._pool = None

    # --- output
    def send(self, frame):
        """Write a frame. On the loop thread, frames are gathered and written once per
        loop iteration; from other threads, at once (after what is gathered)."""
        data = pb.encode_frame(frame)
        loop = self._loop
        with self._wlock:
            if loop is not None and threading.get_ident() == self._loop_thread:
                self._pending.append(data)
                if len(self._pending) == 1:
                    loop.call_soon(self.flush)
                return
            if self._pending:
                data = b"".join(self._pending) + data
                self._pending.clear()
            self._write(data)

    def flush(self):
        with self._wlock:
            if self._pending:
                data = b"".join(self._pending)
                self._pending.clear()
                self._write(data)

    def _write(self, data):
        view = memoryview(data)
        while view:
            n = os.write(self._wfd, view)
            view = view[n:]

    def log(self, message, level="info", invocation_id=0):
        lvl = _LEVELS.get(str(level).lower(), pb.Log.INFO)
        try:
            self.send(pb.Frame(log=pb.Log(id=invocation_id, level=lvl, message=str(message))))
        except OSError:
            pass  # sluice is gone; the result path reports it

    # --- the protocol
    def _fail(self, message):
        sys.stderr.write(f"sluice-sdk: protocol error: {message}\n")
        sys.stderr.flush()
        return EXIT_PROTOCOL

    def handshake(self):
        self.send(pb.Frame(hello=pb.Hello(protocol_version=pb.PROTOCOL_VERSION, sdk=SDK_NAME,
                                          max_inflight=self.max_inflight, pid=os.getpid())))
        frame = pb.read_frame(self._r)
        if frame is None:
            raise ProtocolError("sluice closed the stream before answering Hello")
        kind = frame.WhichOneof("kind")
        if kind == "goodbye":
            raise ProtocolError(f"sluice refused the handshake: {frame.goodbye.reason or '(no reason)'}")
        if kind != "hello_ack":
            raise ProtocolError(f"expected HelloAck as sluice's first frame, got {kind}")
        if frame.hello_ack.protocol_version != pb.PROTOCOL_VERSION:
            raise ProtocolError(f"sluice speaks protocol version {frame.hello_ack.protocol_version}, "
                                f"this SDK ({SDK_NAME}) speaks {pb.PROTOCOL_VERSION}")
        self.function = frame.hello_ack.function

    def serve(self):
        """Run until Goodbye or end of input; returns the process exit code."""
        try:
            self.handshake()
        except ProtocolError as e:
            return self._fail(str(e))
        except OSError as e:
            return self._fail(f"cannot talk to sluice: {e}")
        if not self._async:
            self._pool = concurrent.futures.ThreadPoolExecutor(self._threads, "sluice-handler")
        try:
            return asyncio.run(self._main())
        finally:
            if self._pool:
                self._pool.shutdown(wait=False)

    async def _main(self):
        loop = asyncio.get_running_loop()
        frames = asyncio.Queue()

        def reader():
            # One read takes whatever has arrived; its frames go to the loop as one batch.
            splitter = pb.FrameSplitter()
            fileno = self._r.fileno() if hasattr(self._r, "fileno") else None
            while True:
                try:
                    chunk = os.read(fileno, 1 << 20) if fileno is not None else self._r.read(1 << 20)
                    if chunk:
                        batch = splitter.push(chunk)
                    else:
                        splitter.end()
                        batch = [None]
                except (ProtocolError, OSError) as e:
                    batch = [e]
                if batch:
                    loop.call_soon_threadsafe(frames.put_nowait, batch)
                if batch and not isinstance(batch[-1], pb.Frame):
                    return

        self._loop = loop
        self._loop_thread = threading.get_ident()
        try:
            return await self._serve_frames(loop, frames, reader)
        finally:
            self._loop = None
            self.flush()

    async def _serve_frames(self, loop, frames, reader):
        threading.Thread(target=reader, name="sluice-reader", daemon=True).start()
        batch = []
        while True:
            if not batch:
                batch = await frames.get()
                batch.reverse()
            item = batch.pop()
            if item is None:
                break  # end of input: finish what we hold
            if isinstance(item, Exception):
                return self._fail(str(item))
            kind = item.WhichOneof("kind")
            if kind == "invoke":
                inv = item.invoke
                ctx = Context(self, inv.id, inv.timeout_ms)
                with self._ilock:
                    if inv.id in self._inflight:
                        return self._fail(f"Invoke id {inv.id} is already in flight")
                    self._inflight[inv.id] = (None, ctx)
                if self._async:
                    task = loop.create_task(self._invoke_async(inv, ctx))
                    task.add_done_callback(self._cancelled_before_start)
                    self._inflight[inv.id] = (task, ctx)
                else:
                    self._pool.submit(self._invoke_sync, inv, ctx)
            elif kind == "cancel":
                with self._ilock:
                    held = self._inflight.get(item.cancel.id)
                if held is not None and not held[1].cancelled:
                    held[1]._cancelled = True
                    if held[0] is not None:
                        held[0].cancel()  # a sync handler cannot be stopped: it sees ctx.cancelled
            elif kind == "goodbye":
                break
            else:
                return self._fail(f"unexpected {kind} frame from sluice after the handshake")
        # Finish what we hold.
        if self._async:
            pending = [t for t, _ in self._inflight.values()]
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)
        else:
            drained = asyncio.Event()
            with self._ilock:
                if self._inflight:
                    self._on_drained = lambda: loop.call_soon_threadsafe(drained.set)
                else:
                    drained.set()
            await drained.wait()
        if isinstance(sys.stdout, _PrintToLog):
            sys.stdout.flush()
        return 0

    def _outcome(self, inv, ctx, call):
        """Run call() (the handler) and turn what it returns or raises into a Result."""
        result = pb.Result(id=inv.id)
        try:
            if ctx.cancelled:
                raise asyncio.CancelledError()  # cancelled before it started
            _fill_ok(result, call(), ctx)
        except asyncio.CancelledError:
            if ctx.cancelled:  # by sluice: answer, so sluice sees the worker is alive
                result.status = pb.Result.ERROR
                result.error_message = "cancelled by sluice"
        except Reject as e:
            result.status = pb.Result.REJECTED
            result.error_message = str(e) or "rejected"
        except Retry as e:
            result.status = pb.Result.ERROR
            result.error_message = str(e) or "retry"
            result.retry_after_ms = max(0, e.after_ms)
        except Exception as e:  # the handler's failure is the invocation's error
            result.status = pb.Result.ERROR
            result.error_message = f"{type(e).__name__}: {e}"
            self.log(traceback.format_exc().rstrip(), "error", inv.id)
        return result

    def _answer(self, inv_id, result):
        """Send an invocation's Result and forget it (any thread)."""
        if result.status != pb.Result.STATUS_UNSPECIFIED:  # else: shut down after a protocol error
            try:
                self.send(pb.Frame(result=result))
            except pb.ProtocolError as e:
                result.Clear()
                result.id = inv_id
                result.status = pb.Result.ERROR
                result.error_message = f"result too large: {e}"
                self.send(pb.Frame(result=result))
        with self._ilock:
            self._inflight.pop(inv_id, None)
            if not self._inflight and self._on_drained is not None:
                self._on_drained()

    def _invoke_sync(self, inv, ctx):
        """A sync handler, on a pool thread: it runs and answers without the loop."""
        token = _current.set(ctx)
        try:
            args = (inv.event, ctx) if self._arity == 2 else (inv.event,)
            result = self._outcome(inv, ctx, lambda: self.handler(*args))
        finally:
            _current.reset(token)
        try:
            self._answer(inv.id, result)
        except OSError:
            pass  # sluice is gone

    async def _invoke_async(self, inv, ctx):
        _current.set(ctx)  # this task runs in its own copy of the context
        args = (inv.event, ctx) if self._arity == 2 else (inv.event,)
        value = exc = None
        try:
            if not ctx.cancelled:
                value = await self.handler(*args)
        except BaseException as e:  # classified by _outcome, CancelledError included
            exc = e

        def outcome():
            if exc is not None:
                raise exc
            return value

        self._answer(inv.id, self._outcome(inv, ctx, outcome))

    def _cancelled_before_start(self, task):
        """A task cancelled before its first step never ran: answer for it."""
        if not task.cancelled():
            return
        for inv_id, (t, ctx) in list(self._inflight.items()):
            if t is task:
                result = pb.Result(id=inv_id)
                if ctx.cancelled:
                    result.status = pb.Result.ERROR
                    result.error_message = "cancelled by sluice"
                self._answer(inv_id, result)
                return


def _fill_ok(result, value, ctx):
    emit = list(ctx.emitted)
    if isinstance(value, Response):
        emit.extend(value.emit)
        output, content_type = value.output, value.content_type
        if isinstance(output, str):
            output = output.encode("utf-8")
            content_type = content_type or "text/plain; charset=utf-8"
    elif value is None:
        output, content_type = b"", ""
    elif isinstance(value, (bytes, bytearray, memoryview)):
        output, content_type = bytes(value), ""
    elif isinstance(value, str):
        output, content_type = value.encode("utf-8"), "text/plain; charset=utf-8"
    else:
        output, content_type = json.dumps(value).encode("utf-8"), "application/json"
    result.status = pb.Result.OK
    if output:
        result.output = bytes(output)
    if content_type:
        result.content_type = content_type
    result.emit.extend(emit)


def run(handler, *, max_inflight=None, threads=None):
    """Serve `handler` on this process's stdin/stdout, then exit.

    handler(event) or handler(event, ctx), plain or `async def`. It returns bytes, str,
    a JSON-able value, None or a Response; raises Reject (dead-letter), Retry or any
    exception (error, retried by sluice's policy). Sync handlers run in a thread pool of
    `threads`; `max_inflight` (advertised to sluice) defaults to that pool's size, or to
    0 (no limit) for async handlers.

    stdout is reserved for frames: the original fd 1 is kept privately, fd 1 is pointed
    at stderr (so C extensions and subprocesses cannot corrupt the stream) and print()
    becomes INFO log frames of the current invocation.
    """
    if os.isatty(1):
        sys.stderr.write("%s\n" % TTY_MESSAGE)
        sys.exit(EXIT_PROTOCOL)
    sys.stdout.flush()
    wfd = os.dup(1)
    os.set_inheritable(wfd, False)
    os.dup2(2, 1)
    rstream = os.fdopen(os.dup(0), "rb", buffering=0)
    worker = Worker(handler, rstream, wfd, max_inflight=max_inflight, threads=threads)
    sys.stdout = _PrintToLog(worker)
    code = worker.serve()
    try:
        sys.stdout.flush()
    finally:
        sys.stdout = sys.__stdout__
    sys.stderr.flush()
    # After a protocol error sync handlers may still run in pool threads: do not wait for them.
    os._exit(code)
