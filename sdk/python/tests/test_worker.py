"""The worker protocol end to end: a real worker process fed frames on stdin."""

import os
import subprocess
import sys
import threading

import pytest

from conftest import PKG, fixture, frame_bytes, run_worker, sluice

ECHO = os.path.join(PKG, "examples", "echo", "main.py")
ECHO_ASYNC = os.path.join(PKG, "examples", "echo", "main_async.py")


def invoke(id, data, event_id=None):
    f = sluice.Frame()
    f.invoke.id = id
    f.invoke.event.id = event_id or f"ev-{id}"
    f.invoke.event.data = data
    return frame_bytes(f)


def cancel(id):
    f = sluice.Frame()
    f.cancel.id = id
    return frame_bytes(f)


SESSION = b"".join(fixture(n) for n in ["hello_ack", "invoke", "invoke_fanout", "invoke_poison", "goodbye"])


@pytest.mark.parametrize("script", [ECHO, ECHO_ASYNC])
def test_echo_session_is_byte_exact(script):
    r = run_worker([script], SESSION)
    assert r.rc == 0, r.stderr
    first = r.frames[0]
    assert first.WhichOneof("kind") == "hello"
    assert first.hello.protocol_version == 1
    assert first.hello.sdk.startswith("sluice-python/")
    assert first.hello.pid > 0
    assert r.result_bytes() == sorted(fixture(n) for n in ["result_echo", "result_fanout", "result_poison"])
    logs = r.kinds("log")
    assert {(l.id, l.message) for l in logs} >= {(9007199254740993, "echo ev-1"), (2, "echo ev-2")}


def test_a_terminal_on_stdout_is_refused():
    cmd = f"{sys.executable} {ECHO}"
    p = subprocess.run(["script", "-qec", cmd, "/dev/null"], stdin=subprocess.DEVNULL, capture_output=True,
                       timeout=60, env=dict(os.environ, PYTHONPATH=PKG))
    assert p.returncode == 2
    assert b"sluice-sdk: stdout is a terminal" in p.stdout


def test_end_of_input_without_goodbye_finishes_and_exits_zero():
    r = run_worker([ECHO], fixture("hello_ack") + fixture("invoke"))
    assert r.rc == 0, r.stderr
    assert r.result_bytes() == [fixture("result_echo")]


@pytest.mark.parametrize("data,message", [
    (fixture("hello_ack_v2"), "sluice speaks protocol version 2"),
    (fixture("goodbye_refused"), "refused the handshake: protocol version 7 is not supported"),
    (b"", "closed the stream before answering Hello"),
    (fixture("invoke"), "expected HelloAck as sluice's first frame, got invoke"),
    (fixture("bad_garbage"), "does not parse"),
    (fixture("hello_ack") + fixture("bad_garbage"), "does not parse"),
    (fixture("hello_ack") + fixture("bad_oversize"), "exceeds the 67108864-byte limit"),
    (fixture("hello_ack") + fixture("bad_truncated"), "ended inside a frame"),
    (fixture("hello_ack") + fixture("bad_no_kind"), "no known kind"),
    (fixture("hello_ack") + fixture("result_echo"), "unexpected result frame"),
    (fixture("hello_ack") + fixture("hello_ack"), "unexpected hello_ack frame"),
])
def test_protocol_errors_exit_non_zero_with_a_clear_message(data, message):
    r = run_worker([ECHO], data, timeout=30)
    assert r.rc == 2
    assert "sluice-sdk: protocol error: " in r.stderr
    assert message in r.stderr
    assert r.frames[0].WhichOneof("kind") == "hello"


def test_duplicate_invocation_id_is_a_protocol_error(handlers):
    data = fixture("hello_ack") + invoke(7, b"hang") + invoke(7, b"x")
    r = run_worker([handlers, "cancel-async"], data, timeout=30)
    assert r.rc == 2
    assert "Invoke id 7 is already in flight" in r.stderr


def test_errors_rejects_and_return_types(handlers):
    data = fixture("hello_ack") + b"".join([
        invoke(4, b"retry"), invoke(5, b"raise"), invoke(6, b"str"), invoke(7, b"json"), invoke(8, b"none"),
        invoke(9, b"huge"), fixture("invoke_poison")]) + fixture("goodbye")
    r = run_worker([handlers, "errors"], data)
    assert r.rc == 0, r.stderr
    results = {res.id: res for res in r.kinds("result")}
    assert frame_bytes(sluice.Frame(result=results[4])) == fixture("result_error")
    assert results[5].status == results[5].ERROR
    assert results[5].error_message == "ValueError: bad value"
    assert any(l.id == 5 and "Traceback" in l.message and l.level == l.ERROR for l in r.kinds("log"))
    assert (results[6].output, results[6].content_type) == ("héllo".encode(), "text/plain; charset=utf-8")
    assert (results[7].output, results[7].content_type) == (b'{"a": [1, 2]}', "application/json")
    assert (results[8].status, results[8].output) == (results[8].OK, b"")
    assert results[3].status == results[3].OK  # "poison" is only special in the echo example
    assert results[9].status == results[9].ERROR
    assert results[9].error_message.startswith("result too large: frame of 67108879 bytes exceeds")


def test_print_becomes_log_frames_and_fd1_goes_to_stderr(handlers):
    data = fixture("hello_ack") + invoke(11, b"a") + fixture("goodbye")
    r = run_worker([handlers, "print"], data)
    assert r.rc == 0, r.stderr
    messages = [(l.id, l.level, l.message) for l in r.kinds("log")]
    assert (11, sluice.Frame().log.INFO, "printed by ev-11") in messages
    assert (11, sluice.Frame().log.INFO, "partial line") in messages
    assert "raw fd 1 write" in r.stderr
    assert [res.output for res in r.kinds("result")] == [b"ok"]


@pytest.mark.parametrize("mode,n", [("concurrent-async", 50), ("concurrent-sync", 8)])
def test_many_invocations_in_flight(handlers, mode, n):
    data = fixture("hello_ack") + b"".join(invoke(i, b"d%d" % i) for i in range(1, n + 1)) + fixture("goodbye")
    r = run_worker([handlers, mode, str(n)], data)
    assert r.rc == 0, r.stderr
    results = r.kinds("result")
    assert sorted(res.id for res in results) == list(range(1, n + 1))
    assert all(res.status == res.OK and res.output == b"d%d" % res.id for res in results)
    if mode == "concurrent-sync":
        assert r.frames[0].hello.max_inflight == 2 * n


@pytest.mark.parametrize("mode,answer", [
    ("cancel-async", (1, 2, b"", "cancelled by sluice")),  # the task is cancelled
    ("cancel-sync", (1, 1, b"stopped", "")),  # the handler saw ctx.cancelled and returned
])
def test_cancelled_invocation_stops_and_is_answered(handlers, mode, answer):
    env = dict(os.environ, PYTHONPATH=PKG)
    proc = subprocess.Popen([sys.executable, handlers, mode], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env)
    try:
        proc.stdin.write(fixture("hello_ack") + invoke(1, b"hang") + invoke(2, b"fine"))
        proc.stdin.flush()
        frames = []
        while not any(f.WhichOneof("kind") == "log" and f.log.message == "started" for f in frames):
            frame = sluice.read_frame(proc.stdout)  # waits until the handler runs
            assert frame is not None, proc.stderr.read()
            frames.append(frame)
        proc.stdin.write(cancel(1) + fixture("goodbye"))
        proc.stdin.close()
        frames += sluice.read_frames(proc.stdout.read())
        assert proc.wait(timeout=30) == 0
    finally:
        proc.kill()
        proc.wait()
    got = sorted((f.result.id, f.result.status, f.result.output, f.result.error_message)
                 for f in frames if f.WhichOneof("kind") == "result")
    assert got == [answer, (2, 1, b"fine", "")]


def test_cancel_before_an_async_handler_starts_is_answered_without_running_it(handlers):
    # one write: the worker reads Invoke and Cancel together
    data = fixture("hello_ack") + invoke(1, b"hang") + cancel(1) + fixture("goodbye")
    r = run_worker([handlers, "cancel-async"], data, timeout=30)
    assert r.rc == 0, r.stderr
    assert [(res.id, res.status, res.error_message) for res in r.kinds("result")] == [(1, 2, "cancelled by sluice")]
    assert not [l for l in r.kinds("log") if l.message == "started"]


def test_cancel_of_a_queued_sync_invocation_is_answered_without_running_it(handlers):
    # one thread: invocation 1 holds it until its own Cancel, so 2 is still queued when cancelled
    data = fixture("hello_ack") + invoke(1, b"hang") + invoke(2, b"hang") + cancel(2) + cancel(1) + fixture("goodbye")
    r = run_worker([handlers, "cancel-sync", "1"], data, timeout=30)
    assert r.rc == 0, r.stderr
    got = sorted((res.id, res.status, res.output, res.error_message) for res in r.kinds("result"))
    assert got == [(1, 1, b"stopped", ""), (2, 2, b"", "cancelled by sluice")]
    assert [l.id for l in r.kinds("log") if l.message == "started"] == [1]


def test_a_sync_call_runs_on_the_reader_and_its_result_is_one_write(monkeypatch):
    calls = []

    def handle(event, ctx):
        ctx.info("log " + event.id)
        calls.append(threading.get_ident())
        return event.data

    rfd, feed = os.pipe()
    out, wfd = os.pipe()
    writes = []
    real_write = os.write

    def write(fd, data):
        if fd == wfd:
            writes.append(bytes(data))
        return real_write(fd, data)

    def sluice_side():  # one invocation at a time, like sluice at concurrency 1
        with os.fdopen(out, "rb", buffering=0) as results:
            real_write(feed, fixture("hello_ack"))
            for i in range(1, 4):
                real_write(feed, invoke(i, b"d%d" % i))
                while True:
                    frame = sluice.read_frame(results)
                    if frame is None or frame.WhichOneof("kind") == "result":
                        break
            real_write(feed, fixture("goodbye"))
            os.close(feed)
            results.read()

    monkeypatch.setattr(os, "write", write)
    driver = threading.Thread(target=sluice_side)
    driver.start()
    worker = sluice.Worker(handle, os.fdopen(rfd, "rb", buffering=0), wfd)
    try:
        assert worker.serve() == 0
    finally:
        os.close(wfd)
        driver.join(30)
    assert calls == [threading.get_ident()] * 3  # no hand-off to another thread
    assert sluice.read_frames(writes[0])[0].WhichOneof("kind") == "hello"
    assert len(writes) == 4
    for i, data in enumerate(writes[1:], start=1):  # the log, then the result: one write
        log, result = sluice.read_frames(data)
        assert (log.log.id, log.log.message) == (i, f"log ev-{i}")
        assert (result.result.id, result.result.status, result.result.output) == (i, result.result.OK, b"d%d" % i)


def read_until(proc, frames, done):
    while not any(done(f) for f in frames):
        frame = sluice.read_frame(proc.stdout)
        assert frame is not None, proc.stderr.read()
        frames.append(frame)


def is_log(message):
    return lambda f: f.WhichOneof("kind") == "log" and f.log.message == message


def is_result(id):
    return lambda f: f.WhichOneof("kind") == "result" and f.result.id == id


@pytest.mark.parametrize("threads", [None, 1])
def test_a_long_sync_call_on_the_reader_hands_the_reading_over(handlers, threads):
    # invocation 1 arrives alone, so the reader calls the handler itself; it runs until
    # cancelled, so its log, invocation 2 and the Cancel must get through meanwhile
    env = dict(os.environ, PYTHONPATH=PKG)
    args = [sys.executable, handlers, "cancel-sync"] + ([str(threads)] if threads else [])
    proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    frames = []
    try:
        proc.stdin.write(fixture("hello_ack") + invoke(1, b"hang"))
        proc.stdin.flush()
        read_until(proc, frames, is_log("started"))  # sent while the handler still runs
        if threads is None:
            proc.stdin.write(invoke(2, b"fine"))  # runs and is answered while 1 runs
            proc.stdin.flush()
            read_until(proc, frames, is_result(2))
        else:
            # threads=1: 2 waits for 1's thread, and is cancelled before it gets it
            proc.stdin.write(invoke(2, b"hang") + cancel(2))
            proc.stdin.flush()
        proc.stdin.write(cancel(1) + fixture("goodbye"))
        proc.stdin.close()
        frames += sluice.read_frames(proc.stdout.read())
        assert proc.wait(timeout=30) == 0
    finally:
        proc.kill()
        proc.wait()
    got = sorted((f.result.id, f.result.status, f.result.output, f.result.error_message)
                 for f in frames if f.WhichOneof("kind") == "result")
    second = (2, 1, b"fine", "") if threads is None else (2, 2, b"", "cancelled by sluice")
    assert got == [(1, 1, b"stopped", ""), second]
    assert [f.log.id for f in frames if f.WhichOneof("kind") == "log" and f.log.message == "started"] == [1]


def test_threads_bounds_the_sync_calls_at_once(handlers):
    # the first call starts on the reader and is handed over; the others go to the pool
    data = fixture("hello_ack") + b"".join(invoke(i, b"x") for i in range(1, 7)) + fixture("goodbye")
    r = run_worker([handlers, "max-concurrency", "2"], data)
    assert r.rc == 0, r.stderr
    most = sorted(int(res.output) for res in r.kinds("result"))
    assert len(most) == 6
    assert most[-1] == 2


def test_a_protocol_error_while_a_sync_call_holds_the_first_reader_exits_at_once(handlers):
    env = dict(os.environ, PYTHONPATH=PKG)
    proc = subprocess.Popen([sys.executable, handlers, "cancel-sync"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        proc.stdin.write(fixture("hello_ack") + invoke(1, b"hang"))  # never cancelled
        proc.stdin.flush()
        read_until(proc, [], is_log("started"))
        proc.stdin.write(fixture("bad_garbage"))
        proc.stdin.flush()
        assert proc.wait(timeout=30) == 2
        assert "sluice-sdk: protocol error: " in proc.stderr.read().decode()
    finally:
        proc.kill()
        proc.wait()
