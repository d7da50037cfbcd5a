"""The shared byte-exact fixtures in sdk/testdata decode and re-encode identically."""

import io
import os
import subprocess
import tempfile

import pytest

from conftest import PKG, SCHEMAS, TESTDATA, fixture, sluice

GOOD = ["hello", "hello_ack", "hello_ack_v2", "goodbye", "goodbye_refused", "invoke",
        "invoke_fanout", "invoke_poison", "result_echo", "result_fanout", "result_poison",
        "result_error", "log", "cancel"]


def test_schema_descriptor_matches_schemas():
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "schema.binpb")
        subprocess.run(["protoc", "-I", SCHEMAS, "--include_imports", "--descriptor_set_out=" + out,
                        "worker.proto"], check=True)
        with open(out, "rb") as a, open(os.path.join(PKG, "sluice_sdk", "schema.binpb"), "rb") as b:
            assert a.read() == b.read(), "sluice_sdk/schema.binpb is stale: see sdk/python/README.md"


def test_fixtures_match_their_sources():
    subprocess.run([os.path.join(TESTDATA, "gen.sh"), "--check"], check=True)


@pytest.mark.parametrize("name", GOOD)
def test_fixture_roundtrips(name):
    data = fixture(name)
    frames = sluice.read_frames(data)
    assert len(frames) == 1
    assert sluice.encode_frame(frames[0]) == data


def test_invoke_fields():
    inv = sluice.read_frames(fixture("invoke"))[0].invoke
    assert inv.id == 9007199254740993
    assert inv.timeout_ms == 30000
    ev = inv.event
    assert (ev.id, ev.source, ev.spec_version, ev.type) == ("ev-1", "/sdk/testdata", "1.0", "com.example.test")
    assert (ev.data_content_type, ev.data_schema, ev.subject, ev.time) == (
        "text/plain", "https://example.com/schema", "subj", "2026-01-02T03:04:05Z")
    assert [(e.name, e.value) for e in ev.extensions] == [("traceparent", "00-abc-def-01"), ("tenant", "t1")]
    assert ev.data == b"hello"
    assert (ev.broker, ev.topic, ev.partition, ev.offset) == ("local", "in", 3, 1234567890123)
    assert ev.key == b"k\x00\xff"
    assert [(h.name, h.value) for h in ev.headers] == [("x-h", b"v\x01")]
    assert (ev.broker_timestamp_ms, ev.attempt, ev.first_attempt_time_ms) == (1767323045000, 2, 1767323046000)


def test_log_and_result_built_by_the_sdk_are_byte_exact():
    log = sluice.Frame()
    log.log.id = 9007199254740993
    log.log.level = log.log.WARN
    log.log.message = "héllo ✓ 日本"
    assert sluice.encode_frame(log) == fixture("log")
    ev = sluice.new_event(b"FANOUT", "sluice.echo.fanout", id="ev-2-fanout", source="/sluice/echo",
                          content_type="text/plain")
    res = sluice.Frame()
    res.result.id = 2
    res.result.status = res.result.OK
    res.result.output = b"FANOUT"
    res.result.content_type = "text/plain"
    res.result.emit.append(ev)
    assert sluice.encode_frame(res) == fixture("result_fanout")


@pytest.mark.parametrize("name,message", [
    ("bad_oversize", "exceeds the 67108864-byte limit"),
    ("bad_garbage", "does not parse"),
    ("bad_no_kind", "no known kind"),
    ("bad_truncated", "ended inside a frame"),
])
def test_bad_frames_are_clear_errors(name, message):
    with pytest.raises(sluice.ProtocolError, match=message):
        sluice.read_frame(io.BytesIO(fixture(name)))


def test_truncated_header():
    with pytest.raises(sluice.ProtocolError, match="inside a frame header"):
        sluice.read_frame(io.BytesIO(b"\x00\x00"))


def test_clean_end_of_stream():
    assert sluice.read_frame(io.BytesIO(b"")) is None


@pytest.mark.parametrize("size", [1, 3, 4, 5, 64, 250, 1 << 16])
def test_splitter_finds_the_frames_however_the_stream_is_cut(size):
    from sluice_sdk._proto import FrameSplitter

    stream = b"".join(fixture(name) for name in GOOD)
    splitter = FrameSplitter()
    frames = []
    for pos in range(0, len(stream), size):
        frames += splitter.push(stream[pos:pos + size])
    splitter.end()
    assert [sluice.encode_frame(f) for f in frames] == [fixture(name) for name in GOOD]


@pytest.mark.parametrize("data,message", [
    (fixture("bad_truncated"), "ended inside a frame"),
    (b"\x00\x00", "inside a frame header"),
])
def test_splitter_end_inside_a_frame(data, message):
    from sluice_sdk._proto import FrameSplitter

    splitter = FrameSplitter()
    assert splitter.push(data) == []
    with pytest.raises(sluice.ProtocolError, match=message):
        splitter.end()


def test_splitter_rejects_an_oversize_length():
    from sluice_sdk._proto import FrameSplitter

    with pytest.raises(sluice.ProtocolError, match="exceeds the 67108864-byte limit"):
        FrameSplitter().push(fixture("hello") + fixture("bad_oversize"))


def test_hand_encoded_ok_result_is_what_protobuf_makes():
    from sluice_sdk._proto import Result
    from sluice_sdk._worker import _ok_frame
    for inv_id in (0, 1, 127, 128, 300, 16383, 16384, 2**21 - 1, 2**21, 2**35 + 7, 2**63, 2**64 - 1):
        want = sluice.encode_frame(sluice.Frame(result=Result(id=inv_id, status=Result.OK)))
        assert _ok_frame(inv_id) == want, inv_id
        frame = sluice.read_frames(_ok_frame(inv_id))[0]
        assert frame.result.id == inv_id and frame.result.status == Result.OK


@pytest.mark.parametrize("data_size", [0, 10, 100, 200, 20000, 3000000])
def test_invoke_of_parses_what_sluice_sends_like_the_frame(data_size):
    from sluice_sdk._proto import invoke_of
    # event sizes whose Invoke length takes a varint of 1, 2, 3 and 4 bytes
    frame = sluice.read_frames(fixture("invoke"))[0]
    frame.invoke.event.data = b"x" * data_size
    body = frame.SerializeToString()
    inv = invoke_of(body)
    assert inv is not None and inv == sluice.decode_frame(body).invoke


def test_invoke_of_leaves_every_other_body_to_the_frame_parser():
    from sluice_sdk._proto import invoke_of
    for name in GOOD:
        if not name.startswith("invoke"):
            assert invoke_of(fixture(name)[4:]) is None, name
    body = fixture("invoke")[4:]
    # a field after the invoke (a second invoke merges into the first: the frame decides)
    assert invoke_of(body + body) is None
    assert invoke_of(body + b"\x2a\x02\x08\x01") is None
    assert invoke_of(body[:-1]) is None  # shorter than its length says
    assert invoke_of(b"") is None and invoke_of(b"\x1a") is None
    assert invoke_of(b"\x1a\x00") is None  # an empty Invoke: left to the frame parser
    assert sluice.decode_frame(b"\x1a\x00").invoke.id == 0
    with pytest.raises(sluice.ProtocolError, match="does not parse as sluice.v1.Frame"):
        invoke_of(b"\x1a\x02\x08\xff")  # a truncated varint inside
