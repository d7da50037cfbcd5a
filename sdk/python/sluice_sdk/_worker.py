"""The worker side of the stdio protocol v1: handshake, invocations, logs, shutdown.

Threads (see Worker): a sync handler is called on the thread that reads the frames when
nothing else is in flight, else in a thread pool; an async handler runs on the asyncio
loop, which reads the frames itself. Frames are written to the private copy of the
original stdout under a lock, from any of those threads, one write per batch.
"""

from __future__ import annotations

import collections
import contextvars
import functools
import os
import sys
import threading
import time
from typing import (IO, Any, Awaitable, Callable, Deque, Dict, Iterable, List, Mapping, NoReturn,
                    Optional, Union)

from . import _proto as pb
from ._proto import ProtocolError
from ._version import __version__

# Start-up time is part of every cold start, so what only some workers need is imported
# where it is used: asyncio (async handlers), concurrent.futures (a sync handler with
# more than one invocation in flight), inspect (handlers that are not plain functions),
# json, uuid and traceback.

SDK_NAME = "sluice-python/" + __version__
EXIT_PROTOCOL = 2
TTY_MESSAGE = ("sluice-sdk: stdout is a terminal, but it carries binary frames to sluice: this program "
               "is a sluice function worker (runtime: stdio) and is started by sluice")

# What a handler may return: bytes (no content type), str (text/plain), None (empty), a
# Response, or any other JSON-able value (application/json).
Output = Any
# handler(event) or handler(event, ctx), plain or `async def`.
Handler = Union[Callable[["pb.Event"], Union[Output, Awaitable[Output]]],
                Callable[["pb.Event", "Context"], Union[Output, Awaitable[Output]]]]

_current = contextvars.ContextVar("sluice_invocation", default=None)


class Reject(Exception):
    """Raise to fail the invocation permanently: the event goes straight to the dead-letter queue."""


class Retry(Exception):
    """Raise to fail the invocation with a hint for the next attempt's delay."""

    def __init__(self, message: str = "", after_ms: int = 0) -> None:
        super().__init__(message)
        self.after_ms = int(after_ms)


class Response:
    """An explicit result: output bytes, its content type, and events to emit."""

    def __init__(self, output: Union[bytes, bytearray, memoryview, str] = b"",
                 content_type: str = "", emit: Iterable[pb.Event] = ()) -> None:
        self.output = output
        self.content_type = content_type
        self.emit = list(emit)


def new_event(data: Union[bytes, bytearray, memoryview, str], type: str, *, source: str = "",
              id: str = "", subject: str = "", content_type: str = "",
              extensions: Optional[Mapping[str, Any]] = None) -> pb.Event:
    """Build an Event to emit. id defaults to a random UUID; source to the function's."""
    import uuid

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


_HEADER = pb._HEADER
_EAGER_TASKS = sys.version_info >= (3, 12)
_OK = pb.Result.OK
_LEVELS = {"debug": pb.Log.DEBUG, "info": pb.Log.INFO, "warn": pb.Log.WARN,
           "warning": pb.Log.WARN, "error": pb.Log.ERROR}


class Context:
    """Per-invocation context: the invocation id, its deadline, logging and emitting."""

    def __init__(self, worker: Worker, invocation_id: int, timeout_ms: int) -> None:
        self._worker = worker
        self.id = invocation_id
        self.function = worker.function
        self.timeout_ms = timeout_ms
        self.deadline = time.monotonic() + timeout_ms / 1000.0 if timeout_ms else None
        self.emitted: List[pb.Event] = []
        self._cancelled = False  # set on the loop thread, read by handlers on any thread

    @property
    def cancelled(self) -> bool:
        """True once sluice has cancelled this invocation (its timeout passed). A sync
        handler should check it in long loops and return early; an async handler is
        cancelled with asyncio.CancelledError."""
        return self._cancelled

    def remaining(self) -> Optional[float]:
        """Seconds left before sluice times this invocation out (None when unlimited)."""
        return None if self.deadline is None else max(0.0, self.deadline - time.monotonic())

    def log(self, message: str, level: str = "info") -> None:
        self._worker.log(message, level, self.id)

    def debug(self, message: str) -> None:
        self.log(message, "debug")

    def info(self, message: str) -> None:
        self.log(message, "info")

    def warn(self, message: str) -> None:
        self.log(message, "warn")

    def error(self, message: str) -> None:
        self.log(message, "error")

    def emit(self, data: Union[bytes, bytearray, memoryview, str], type: str,
             **kwargs: Any) -> pb.Event:
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


class _CancelledBeforeStart(Exception):
    """An invocation sluice cancelled before its handler started."""


def _cancelled_errors():
    """What counts as a cancellation in _outcome: asyncio's only once something imported it
    (an async handler, or a sync one using asyncio)."""
    aio = sys.modules.get("asyncio")
    return (_CancelledBeforeStart, aio.CancelledError) if aio is not None else _CancelledBeforeStart


_CO_VARARGS = 0x04
_CO_COROUTINE = 0x80
_FunctionType = type(lambda: None)


def _plain_function(handler):
    """The handler when it is a plain function whose code says its parameters (what
    inspect.signature would read; not wrapped, no __signature__), else None."""
    if type(handler) is _FunctionType and not hasattr(handler, "__wrapped__") \
            and not hasattr(handler, "__signature__"):
        return handler
    return None


def _arity(handler):
    fn = _plain_function(handler)
    if fn is not None:
        code = fn.__code__
        return 2 if code.co_flags & _CO_VARARGS or code.co_argcount >= 2 else 1
    import inspect

    try:
        params = inspect.signature(handler).parameters.values()
    except (TypeError, ValueError):
        return 2
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if any(p.kind == p.VAR_POSITIONAL for p in params) or len(positional) >= 2:
        return 2
    return 1


def _is_async(handler):
    fn = _plain_function(handler)
    if fn is not None and not hasattr(fn, "_is_coroutine_marker"):
        return bool(fn.__code__.co_flags & _CO_COROUTINE)
    import inspect

    return inspect.iscoroutinefunction(handler) or inspect.iscoroutinefunction(
        getattr(handler, "__call__", None))


# Reads take at most this much: a pipe holds 64 KiB, and a larger read buffer would be
# allocated with mmap (and freed with munmap) on every read.
_READ_CHUNK = 1 << 16
# A sync handler called on the reading thread that is still running after one to two of
# these intervals makes another thread take over reading, so that Cancel frames and
# further invocations are not held up behind it.
_TAKEOVER_INTERVAL_S = 0.002
# The watcher thread sleeps (until the next such call) after this many idle intervals.
_WATCHER_IDLE_INTERVALS = 10
# While one of the last two handler calls on the reading thread took less than this
# (about what a hand-off to a pool thread costs), the reader also calls the handler for
# an Invoke when more frames wait behind it: one after the other beats a round trip
# through the pool.
_QUICK_CALL_S = 50e-6
# The Results of quick calls on the reader wait for the others made from the same read
# and go out in one write (one wake-up of sluice instead of one per Result), but no
# longer than this after the first of them was made.
_GATHER_S = 200e-6


class Worker:
    """Serves one handler over a frame stream (a binary reader and a writable fd).

    Sync handler: the thread in `serve` reads the frames. An Invoke that arrives while
    nothing else is in flight is handled right there (if more frames wait behind it: only
    while the handler's calls are quick): the handler is called, and its Result goes out
    in one write together with the Log frames it made, and with the Results of the quick
    calls made for the frames read with it (_GATHER_S). Other invocations go to the thread
    pool. A watcher thread hands the reading over to a new thread when a handler called
    this way runs longer than a few ms. At most `threads` handler calls run at once.

    Async handler: the asyncio loop reads the frames (add_reader), runs each invocation as
    a task, and writes the frames made in one loop iteration together.
    """

    def __init__(self, handler: Handler, rstream: IO[bytes], wfd: int, *,
                 max_inflight: Optional[int] = None, threads: Optional[int] = None) -> None:
        self.handler = handler
        self._arity = _arity(handler)
        self._async = _is_async(handler)
        self._r = rstream
        self._rfd: Optional[int]
        try:
            self._rfd = rstream.fileno()
        except (AttributeError, OSError, ValueError):
            self._rfd = None
        self._wfd = wfd
        self.function = ""
        if threads is None:
            threads = min(32, (os.cpu_count() or 1) + 4)
        self._threads = threads
        if max_inflight is None:
            # sync: twice the threads, so the next invocation waits in the process when a
            # thread frees up instead of a round trip away
            max_inflight = 0 if self._async else 2 * threads
        self.max_inflight = max_inflight
        # id -> (task or None, ctx), under _ilock; the reader adds, whoever answers removes
        # (a sync call on the reader, when nothing else is in flight, goes without the lock)
        self._inflight: Dict[Any, Any] = {}
        self._ilock = threading.Lock()
        self._on_drained = None  # set at shutdown: called when _inflight empties
        # output, under _wlock: the frames of thread _gather (the loop thread, or a reader
        # running a handler) wait in _pending until its next write or flush
        self._wlock = threading.Lock()
        self._pending: List[bytes] = []
        self._gather = None
        self._loop = None  # set while the asyncio loop runs: it flushes _pending
        self._feeding = False  # the loop is handling frames or a result: it flushes after
        self._flush_soon = False  # a flush is scheduled on the loop
        self._splitter = pb.FrameSplitter()  # the reader's (the loop's for async handlers)
        # sync handlers
        self._pool = None  # made by the reader on first use
        self._batch: Deque[bytes] = collections.deque()  # frame bodies read, not handled yet: the reader's
        # A handler call on the reader is numbered (_inline_seq) and holds a claim while it
        # runs. The reader and the watcher both pop the claim when done with it (dict.pop is
        # atomic): whoever pops it first decides. The watcher popping it is a takeover.
        self._inline_seq = 0
        self._claims: Dict[int, Any] = {}
        self._watcher_wake = threading.Condition()
        self._watcher_parked = False
        # One of the last two handler calls on the reader was quick (the reader's): one
        # slow call alone is as likely the machine's doing (the process was preempted
        # during it) as the handler's, and sending what follows to the pool costs more.
        self._quick = True
        self._last_quick = True  # the last call was
        # handler calls running at once, inline ones after a takeover included
        self._slots = threading.BoundedSemaphore(threads)
        self._done = threading.Event()
        self._exit = None
        self._serving = None  # the thread in serve()
        # run() sets it: ends the process at once after a protocol error that a reader
        # other than the serving thread (busy in a handler) ran into
        self.abort: Optional[Callable[[int], Any]] = None

    # --- output
    def send(self, frame: pb.Frame) -> None:
        """Write a frame (from any thread)."""
        self._send_bytes(pb.encode_frame(frame))

    def _send_bytes(self, data, gatherer=None):
        """Write encoded frames. The gathering thread's frames wait in _pending, unless it
        passes gatherer (its own id) to stop gathering; every write takes along what waits
        in _pending first, so frames stay in order."""
        with self._wlock:
            gather = self._gather
            if gather is not None:
                if gatherer is None and gather == threading.get_ident():
                    self._pending.append(data)
                    if self._loop is not None and not self._flush_soon and not self._feeding:
                        self._flush_soon = True
                        self._loop.call_soon(self.flush)
                    return
                if gatherer == gather:
                    self._gather = None
            if self._pending:
                self._pending.append(data)
                data = b"".join(self._pending)
                self._pending.clear()
            if data:
                n = os.write(self._wfd, data)
                if n < len(data):
                    self._write(memoryview(data)[n:])

    def flush(self) -> None:
        with self._wlock:
            self._flush_soon = False
            if self._pending:
                data = b"".join(self._pending)
                self._pending.clear()
                self._write(data)

    def _write(self, data):
        view = memoryview(data)
        while view:
            n = os.write(self._wfd, view)
            view = view[n:]

    def log(self, message: str, level: str = "info", invocation_id: int = 0) -> None:
        lvl = _LEVELS.get(level) if type(level) is str else None
        if lvl is None:
            lvl = _LEVELS.get(str(level).lower(), pb.Log.INFO)
        frame = pb.Frame()
        entry = frame.log
        entry.id = invocation_id
        entry.level = lvl
        entry.message = str(message)
        try:
            self.send(frame)
        except OSError:
            pass  # sluice is gone; the result path reports it

    # --- the protocol
    def _fail(self, message):
        sys.stderr.write(f"sluice-sdk: protocol error: {message}\n")
        sys.stderr.flush()
        return EXIT_PROTOCOL

    def handshake(self) -> None:
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

    def serve(self) -> int:
        """Run until Goodbye or end of input; returns the process exit code."""
        try:
            self.handshake()
        except ProtocolError as e:
            return self._fail(str(e))
        except OSError as e:
            return self._fail(f"cannot talk to sluice: {e}")
        if self._async:
            import asyncio

            return asyncio.run(self._main())
        return self._serve_sync()

    def _read_chunk(self):
        if self._rfd is not None:
            return os.read(self._rfd, _READ_CHUNK)
        return getattr(self._r, "read1", self._r.read)(_READ_CHUNK)

    # --- sync handlers
    def _serve_sync(self):
        self._serving = threading.get_ident()
        threading.Thread(target=self._watch, name="sluice-watcher", daemon=True).start()
        try:
            self._read_loop()
            self._done.wait()  # another reader took over and finishes
        finally:
            self._done.set()
            with self._watcher_wake:
                self._watcher_wake.notify()
            if self._pool:
                self._pool.shutdown(wait=False)
        self.flush()
        return self._exit

    def _read_loop(self):
        """Read and handle frames until the input ends or the watcher hands the reading to
        another thread (while this one runs a handler)."""
        me = threading.get_ident()
        batch = self._batch
        inflight = self._inflight
        claims = self._claims
        handler = self.handler
        two_args = self._arity == 2
        fd = self._rfd
        split = self._splitter.split
        invoke_of = pb.invoke_of
        perf_counter = time.perf_counter
        wlock = self._wlock
        pending = self._pending
        gathering = 0.0  # when the first Result now waiting in _pending was made (0: none)
        while True:
            if not batch:
                if gathering:
                    gathering = 0.0
                    try:
                        self.flush()
                    except OSError:
                        pass  # sluice is gone: the read ends
                try:
                    chunk = os.read(fd, _READ_CHUNK) if fd is not None else self._read_chunk()
                    if chunk:
                        batch.extend(split(chunk))
                        continue
                    self._splitter.end()
                except (ProtocolError, OSError) as e:
                    return self._finish(self._fail(str(e)))
                return self._finish(0)  # end of input: finish what we hold
            body = batch.popleft()
            try:
                inv = invoke_of(body)  # what sluice sends, parsed without a Frame
                if inv is None:
                    frame = pb.decode_frame(body)
                    kind = frame.WhichOneof("kind")
                    if kind == "invoke":
                        inv = frame.invoke
            except ProtocolError as e:
                return self._finish(self._fail(str(e)))
            if inv is not None:
                inv_id = inv.id
                ctx = Context(self, inv_id, inv.timeout_ms)
                if not inflight and (self._quick or not batch):
                    # Nothing else in flight: call the handler on this thread. (Only the
                    # reader adds to _inflight, so it stays this way.)
                    inflight[inv_id] = (None, ctx)
                    self._gather = me  # its logs go out with its Result (or at a takeover)
                    seq = self._inline_seq + 1
                    self._inline_seq = seq
                    claims[seq] = True
                    if self._watcher_parked:
                        with self._watcher_wake:
                            self._watcher_wake.notify()
                    event = inv.event
                    token = _current.set(ctx)
                    start = perf_counter()
                    try:
                        try:
                            value = handler(event, ctx) if two_args else handler(event)
                        except BaseException as e:
                            answer = self._failed(inv, ctx, e)
                        else:
                            if value is None and not ctx.emitted:
                                answer = _ok_frame(inv_id)  # the common case, without a protobuf message
                            else:
                                answer = self._returned(inv, ctx, value)
                    except BaseException:  # SystemExit, KeyboardInterrupt: no answer, but the logs
                        self._send_bytes(b"", me)
                        raise
                    finally:
                        _current.reset(token)
                    end = perf_counter()
                    quick = end - start < _QUICK_CALL_S
                    self._quick = quick or self._last_quick
                    self._last_quick = quick
                    if claims.pop(seq, None) is None:  # the watcher has started another reader
                        try:
                            self._answer(inv_id, answer, me)
                        except OSError:
                            pass
                        self._slots.release()  # taken by the watcher for this call
                        return
                    # Still the only reader, and the pool is idle: no one else touches
                    # _inflight. The Result goes out with the logs gathered before it, and
                    # waits for the next ones while quick calls follow from the same read.
                    if quick and batch and (not gathering or end - gathering < _GATHER_S):
                        if not gathering:
                            gathering = start
                        with wlock:  # this thread is _gather (a takeover would have popped the claim)
                            pending.append(answer)
                    else:
                        gathering = 0.0
                        try:
                            self._send_bytes(answer, me)
                        except OSError:
                            pass  # sluice is gone: the read ends
                    del inflight[inv_id]
                    continue
                with self._ilock:
                    if inv.id in inflight:
                        return self._finish(self._fail(f"Invoke id {inv.id} is already in flight"))
                    inflight[inv.id] = (None, ctx)
                if self._pool is None:
                    import concurrent.futures

                    self._pool = concurrent.futures.ThreadPoolExecutor(self._threads, "sluice-handler")
                self._pool.submit(self._invoke_sync, inv, ctx)
            elif kind == "cancel":
                with self._ilock:
                    held = inflight.get(frame.cancel.id)
                if held is not None:
                    held[1]._cancelled = True  # a sync handler cannot be stopped: it sees ctx.cancelled
            elif kind == "goodbye":
                return self._finish(0)
            else:
                return self._finish(self._fail(f"unexpected {kind} frame from sluice after the handshake"))

    def _finish(self, code):
        """Input is over (0: wait for what is in flight) or broken (a protocol error)."""
        try:
            self.flush()  # what the reader gathered
        except OSError:
            pass
        if code == 0:
            drained = threading.Event()
            with self._ilock:
                if self._inflight:
                    self._on_drained = drained.set
                else:
                    drained.set()
            drained.wait()
            if isinstance(sys.stdout, _PrintToLog):
                sys.stdout.flush()
        self._exit = code
        self._done.set()
        if code and self.abort is not None and threading.get_ident() != self._serving:
            self.abort(code)

    def _watch(self):
        """Hands the reading over to a new thread when a handler called on the reader is
        still running after one to two intervals; sleeps while the reader calls none."""
        seen = 0
        idle = 0
        claims = self._claims
        wake = self._watcher_wake
        while not self._done.is_set():
            time.sleep(_TAKEOVER_INTERVAL_S)
            seq = self._inline_seq
            if seq != seen:
                seen = seq
                idle = 0
            elif claims.pop(seq, None) is not None:
                self._take_over()
            else:
                idle += 1
                if idle >= _WATCHER_IDLE_INTERVALS:
                    with wake:
                        self._watcher_parked = True
                        # the reader bumps _inline_seq before it looks at _watcher_parked
                        if self._inline_seq == seen and not self._done.is_set():
                            wake.wait()
                        self._watcher_parked = False
                    idle = 0

    def _take_over(self):
        """Start a new reader: the busy one stops reading when its handler returns."""
        self._quick = self._last_quick = False
        # The busy call takes a thread's place (the pool has been idle since it started,
        # but a pool thread may still be about to release its place).
        self._slots.acquire()
        with self._wlock:
            self._gather = None  # the busy handler's logs go out now, and from now on
        try:
            self.flush()
        except OSError:
            pass
        threading.Thread(target=self._read_loop, name="sluice-reader", daemon=True).start()

    def _invoke_sync(self, inv, ctx):
        """A sync handler, on a pool thread: it runs and answers."""
        token = _current.set(ctx)
        try:
            with self._slots:
                answer = self._outcome(inv, ctx, self.handler,
                                       (inv.event, ctx) if self._arity == 2 else (inv.event,))
        finally:
            _current.reset(token)
        try:
            self._answer(inv.id, answer)
        except OSError:
            pass  # sluice is gone

    # --- async handlers
    async def _main(self):
        import asyncio

        loop = asyncio.get_running_loop()
        self._loop = loop
        self._gather = threading.get_ident()
        try:
            return await self._serve_async(loop)
        finally:
            self._loop = None
            with self._wlock:
                self._gather = None
            self.flush()

    async def _serve_async(self, loop):
        import asyncio

        ended = loop.create_future()  # None (Goodbye, end of input) or the protocol error

        def handle(frames):
            last = len(frames) - 1
            for i, frame in enumerate(frames):
                kind = frame.WhichOneof("kind")
                if kind == "invoke":
                    inv = frame.invoke
                    ctx = Context(self, inv.id, inv.timeout_ms)
                    with self._ilock:
                        if inv.id in self._inflight:
                            ended.set_result(ProtocolError(f"Invoke id {inv.id} is already in flight"))
                            return
                        self._inflight[inv.id] = (None, ctx)
                    if _EAGER_TASKS and i == last:
                        # Python >= 3.12, nothing waits behind it: the handler runs now, up
                        # to its first real suspension (and may answer at once)
                        task = asyncio.Task(self._invoke_async(inv, ctx), loop=loop, eager_start=True)
                        if task.done():
                            continue
                    else:
                        task = loop.create_task(self._invoke_async(inv, ctx))
                    with self._ilock:
                        if inv.id in self._inflight:
                            self._inflight[inv.id] = (task, ctx)
                elif kind == "cancel":
                    inv_id = frame.cancel.id
                    with self._ilock:
                        held = self._inflight.get(inv_id)
                    if held is not None and held[0] is not None and not held[1].cancelled:
                        held[1]._cancelled = True
                        held[0].cancel()
                        held[0].add_done_callback(functools.partial(self._cancelled_before_start, inv_id, held[1]))
                elif kind == "goodbye":
                    ended.set_result(None)
                    return
                else:
                    ended.set_result(ProtocolError(f"unexpected {kind} frame from sluice after the handshake"))
                    return

        def feed(chunk, error=None):
            if ended.done():
                return
            try:
                if error is not None:
                    raise error
                if chunk:
                    handle(self._splitter.push(chunk))
                else:
                    self._splitter.end()
                    ended.set_result(None)  # end of input: finish what we hold
            except (ProtocolError, OSError) as e:
                ended.set_result(e)

        def on_readable():
            try:
                chunk = os.read(self._rfd, _READ_CHUNK)
            except OSError as e:
                chunk, error = b"", e
            else:
                error = None
            self._feeding = True  # what eagerly started handlers answer goes out below
            try:
                feed(chunk, error)
            finally:
                self._feeding = False
            try:
                self.flush()
            except OSError:
                pass  # sluice is gone; the read ends

        def reader():  # when the loop cannot watch the input (not a pipe or socket)
            while True:
                try:
                    chunk, error = self._read_chunk(), None
                except OSError as e:
                    chunk, error = b"", e
                loop.call_soon_threadsafe(feed, chunk, error)
                if not chunk:
                    return

        watching = False
        if self._rfd is not None:
            try:
                loop.add_reader(self._rfd, on_readable)
                watching = True
            except (NotImplementedError, OSError, ValueError):
                pass
        if not watching:
            threading.Thread(target=reader, name="sluice-reader", daemon=True).start()
        try:
            outcome = await ended
        finally:
            if watching:
                loop.remove_reader(self._rfd)
        if outcome is not None:
            return self._fail(str(outcome))
        # Finish what we hold.
        with self._ilock:
            pending = [t for t, _ in self._inflight.values() if t is not None]
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
        if isinstance(sys.stdout, _PrintToLog):
            sys.stdout.flush()
        return 0

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

        self._feeding = True
        try:
            self._answer(inv.id, self._outcome(inv, ctx, outcome, ()))
        finally:
            self._feeding = False
        if not self._inflight:
            self.flush()  # nothing else in flight could go out in the same write
        elif self._pending and not self._flush_soon:
            self._flush_soon = True
            import asyncio

            asyncio.get_running_loop().call_soon(self.flush)

    def _cancelled_before_start(self, inv_id, ctx, task):
        """A task cancelled before its first step never ran: answer for it."""
        if not task.cancelled():
            return
        data = b""
        if ctx.cancelled:
            data = _encode_result(pb.Result(id=inv_id, status=pb.Result.ERROR,
                                            error_message="cancelled by sluice"))
        self._answer(inv_id, data)

    # --- results
    def _outcome(self, inv, ctx, call, args):
        """Run call(*args) (the handler) and encode what it returns or raises as a Result
        frame with its length prefix; b"" when there is nothing to answer (cancelled by
        the shutdown, not by sluice)."""
        try:
            if ctx._cancelled:
                raise _CancelledBeforeStart()
            value = call(*args)
        except BaseException as e:
            return self._failed(inv, ctx, e)
        return self._returned(inv, ctx, value)

    def _returned(self, inv, ctx, value):
        """The encoded Result of a handler that returned value."""
        try:
            if value is None and not ctx.emitted:
                return _ok_frame(inv.id)  # the common case, without a protobuf message
            result = pb.Result(id=inv.id)
            _fill_ok(result, value, ctx)
        except Exception as e:  # a value that cannot be sent (not JSON-able, say)
            return self._failed(inv, ctx, e)
        return _encode_result(result)

    def _failed(self, inv, ctx, e):
        """The encoded Result of a handler that raised e (b"": none); re-raises what is
        not the handler's failure (SystemExit, KeyboardInterrupt)."""
        if isinstance(e, _cancelled_errors()):
            if not ctx._cancelled:
                return b""
            # by sluice: answer, so sluice sees the worker is alive
            result = pb.Result(id=inv.id, status=pb.Result.ERROR, error_message="cancelled by sluice")
        elif isinstance(e, Reject):
            result = pb.Result(id=inv.id, status=pb.Result.REJECTED, error_message=str(e) or "rejected")
        elif isinstance(e, Retry):
            result = pb.Result(id=inv.id, status=pb.Result.ERROR, error_message=str(e) or "retry",
                               retry_after_ms=max(0, e.after_ms))
        elif isinstance(e, Exception):  # the handler's failure is the invocation's error
            result = pb.Result(id=inv.id, status=pb.Result.ERROR, error_message=f"{type(e).__name__}: {e}")
            import traceback

            self.log("".join(traceback.format_exception(type(e), e, e.__traceback__)).rstrip(), "error", inv.id)
        else:
            raise e
        return _encode_result(result)

    def _answer(self, inv_id, data, gatherer=None):
        """Send an invocation's encoded Result frame (b"": none, after a shutdown) and
        forget the invocation (any thread). gatherer: the calling reader thread, whose
        gathered logs go out in the same write."""
        if data or gatherer is not None:
            self._send_bytes(data, gatherer)
        with self._ilock:
            self._inflight.pop(inv_id, None)
            if not self._inflight and self._on_drained is not None:
                self._on_drained()


def _varint(n):
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _ok_frame(inv_id):
    """Frame{result: Result{id: inv_id, status: OK}} with its length prefix, encoded by
    hand: the bytes protobuf makes (fields in number order, a zero id left out). The ids
    sluice hands out are small and grow: up to 2**21 the varint is spelled out."""
    if 0 < inv_id < 0x4000:
        if inv_id < 0x80:
            return bytes((0, 0, 0, 6, 0x22, 4, 8, inv_id, 16, 1))
        return bytes((0, 0, 0, 7, 0x22, 5, 8, inv_id & 0x7F | 0x80, inv_id >> 7, 16, 1))
    if 0x4000 <= inv_id < 0x200000:
        return bytes((0, 0, 0, 8, 0x22, 6, 8, inv_id & 0x7F | 0x80, inv_id >> 7 & 0x7F | 0x80,
                      inv_id >> 14, 16, 1))
    res = (b"\x08" + _varint(inv_id) + b"\x10\x01") if inv_id else b"\x10\x01"
    n = len(res)  # at most 13: one-byte lengths
    return b"\x00\x00\x00" + bytes((n + 2, 0x22, n)) + res


def _encode_result(result):
    """A Result as a Frame with its length prefix; one too large to send becomes an error."""
    answer = pb.Frame(result=result)
    body = answer.SerializeToString()
    if len(body) > pb.MAX_FRAME_BYTES:
        body = _too_large(answer, len(body))
    return _HEADER.pack(len(body)) + body


def _too_large(answer, size):
    """Turn a Result frame too large to send into an error; returns the new body."""
    result = answer.result
    inv_id = result.id
    result.Clear()
    result.id = inv_id
    result.status = pb.Result.ERROR
    result.error_message = f"result too large: frame of {size} bytes exceeds the {pb.MAX_FRAME_BYTES}-byte limit"
    return answer.SerializeToString()


def _fill_ok(result, value, ctx):
    emit = ctx.emitted
    if value is None:
        output, content_type = b"", ""
    elif isinstance(value, Response):
        emit = emit + value.emit
        output, content_type = value.output, value.content_type
        if isinstance(output, str):
            output = output.encode("utf-8")
            content_type = content_type or "text/plain; charset=utf-8"
    elif isinstance(value, (bytes, bytearray, memoryview)):
        output, content_type = bytes(value), ""
    elif isinstance(value, str):
        output, content_type = value.encode("utf-8"), "text/plain; charset=utf-8"
    else:
        import json

        output, content_type = json.dumps(value).encode("utf-8"), "application/json"
    result.status = _OK
    if output:
        result.output = bytes(output)
    if content_type:
        result.content_type = content_type
    if emit:
        result.emit.extend(emit)


def run(handler: Handler, *, max_inflight: Optional[int] = None,
        threads: Optional[int] = None) -> NoReturn:
    """Serve `handler` on this process's stdin/stdout, then exit.

    handler(event) or handler(event, ctx), plain or `async def`. It returns bytes, str,
    a JSON-able value, None or a Response; raises Reject (dead-letter), Retry or any
    exception (error, retried by sluice's policy). A sync handler is called on the thread
    that reads the frames when nothing else is in flight, else in a thread pool of
    `threads`; `max_inflight` (advertised to sluice) defaults to twice that pool's size,
    or to 0 (no limit) for async handlers.

    stdout is reserved for frames: the original fd 1 is kept privately, fd 1 is pointed
    at stderr (so C extensions and subprocesses cannot corrupt the stream) and print()
    becomes INFO log frames of the current invocation.
    """
    if os.environ.get(TEMPLATE_ENV) == "1":
        _serve_as_template()  # returns in each worker it forks, with fds 0, 1, 2 set up
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
    worker.abort = _exit
    _exit(worker.serve())


TEMPLATE_ENV = "SLUICE_TEMPLATE"
_MAX_FDS = 4


def _serve_as_template() -> None:
    """Serve as sluice's worker template (workers/worker_template.h): everything the
    function imports is loaded now; fork a worker on each request and return in it.

    fd 0 is a SOCK_SEQPACKET socket to sluice. Messages: "ready <pid>" (sent once),
    "fork" + 3 fds (the new worker's stdin, stdout, stderr) -> "forked <pid>" + its
    pidfd or "error <text>"; "exit <pid> <wait status>" when a forked worker was reaped.
    Returns only in a forked worker. Exits when sluice closes the socket.
    """
    import array
    import gc
    import select
    import socket

    why = ("threads are running (started while the function's module was imported): a fork "
           "would copy only one of them" if threading.active_count() > 1 else
           "" if hasattr(os, "pidfd_open") else "os.pidfd_open is missing (Linux >= 5.3, Python >= 3.9)")
    if why:  # sluice then spawns every worker
        sys.stderr.write("sluice-sdk: not serving as a worker template: %s\n" % why)
        sys.stderr.flush()
        os._exit(EXIT_PROTOCOL)
    sock = socket.socket(fileno=0)
    sys.stdout.flush()
    sys.stderr.flush()
    gc.collect()
    gc.freeze()  # what start-up made stays shared with the workers (no copy on write by the GC)
    children: Dict[int, int] = {}  # pidfd -> pid
    poller = select.poll()
    poller.register(0, select.POLLIN)
    fd_bytes = socket.CMSG_SPACE(_MAX_FDS * array.array("i").itemsize)
    try:
        sock.sendmsg([b"ready %d" % os.getpid()])
        while True:
            if _template_turn(sock, poller, children, fd_bytes):
                return
    except OSError as e:  # sluice is gone (or the socket broke): nothing left to serve
        sys.stderr.write("sluice-sdk: worker template: %s\n" % e)
        os._exit(0)


def _template_turn(sock, poller, children, fd_bytes) -> bool:
    """One poll of the template's loop; True in a freshly forked worker."""
    import array
    import select
    import socket

    for fd, _ in poller.poll():
        if fd in children:  # a worker it forked exited: reap it, tell sluice how
            pid = children.pop(fd)
            poller.unregister(fd)
            os.close(fd)
            _, status = os.waitpid(pid, 0)
            sock.sendmsg([b"exit %d %d" % (pid, status)])
            continue
        msg, anc, _, _ = sock.recvmsg(64, fd_bytes)
        if not msg and not anc:
            os._exit(0)  # sluice closed the socket
        fds = array.array("i")
        for level, kind, data in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds.frombytes(data[:len(data) - len(data) % fds.itemsize])
        if msg != b"fork" or len(fds) != 3:
            for f in fds:
                os.close(f)
            continue
        try:
            pid = os.fork()
        except OSError as e:
            for f in fds:
                os.close(f)
            sock.sendmsg([b"error " + str(e).encode()[:200]])
            continue
        if pid == 0:
            _become_worker(sock, fds, children)
            return True
        for f in fds:
            os.close(f)
        try:
            os.setpgid(pid, pid)  # as the child does, whichever runs first
        except OSError:
            pass
        pidfd = os.pidfd_open(pid)  # before any waitpid: it names this very process
        children[pidfd] = pid
        poller.register(pidfd, select.POLLIN)
        sock.sendmsg([b"forked %d" % pid],
                     [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [pidfd]))])
    return False


def _become_worker(sock, fds, children) -> None:
    """In a forked worker: its own process group, the fds sluice passed as 0, 1, 2."""
    os.setpgid(0, 0)
    for pidfd in children:
        os.close(pidfd)
    sock.detach()  # fd 0 is replaced below
    for target, f in enumerate(fds):
        os.dup2(f, target)
    for f in fds:
        if f > 2:
            os.close(f)
    os.environ.pop(TEMPLATE_ENV, None)


def _exit(code: int) -> NoReturn:
    try:
        sys.stdout.flush()
    finally:
        sys.stdout = sys.__stdout__
    sys.stderr.flush()
    # After a protocol error sync handlers may still run: do not wait for them.
    os._exit(code)
