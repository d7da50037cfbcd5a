"""Decodes one Kafka record (kcat -J) with the CloudEvents SDK's Kafka binding, no
custom unmarshaller, and checks it is the result event sluice published.

Usage: decode_output.py EXPECTED_CONTENT_TYPE EXPECTED_DATA_JSON < record.json
EXPECTED_DATA_JSON is the data the SDK must hand back (a JSON value: an object for a
JSON content type, a string otherwise).
"""
import json
import sys

from cloudevents.core.bindings import kafka

record = json.load(sys.stdin)
raw = record.get("headers") or []
headers = {raw[i]: raw[i + 1].encode() for i in range(0, len(raw), 2)}
key = record.get("key")
message = kafka.KafkaMessage(
    headers=headers,
    key=key.encode() if key is not None else None,
    value=record["payload"].encode(),
)
event = kafka.from_binary_event(message)
want_type, want_data = sys.argv[1], json.loads(sys.argv[2])
problems = []
if event.get_datacontenttype() != want_type:
    problems.append(f"datacontenttype {event.get_datacontenttype()!r}, want {want_type!r}")
if event.get_data() != want_data:
    problems.append(f"data {event.get_data()!r}, want {want_data!r}")
if event.get_type() != "io.sluice.function.result":
    problems.append(f"type {event.get_type()!r}")
if problems:
    print("decoded event: " + "; ".join(problems), file=sys.stderr)
    print(f"record: {record!r}", file=sys.stderr)
    sys.exit(1)
print(f"ok: {event.get_id()} {want_type}")
