"""The worker protocol end to end: a real worker process fed frames on stdin."""

import os
import subprocess
import sys

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
