"""Schemathesis hooks: NDJSON bodies. The OpenAPI document describes an NDJSON body as the array
of its lines (OpenAPI 3.1 has no item schemas), so a generated array is sent one element per
line and a received NDJSON response is read back as the array of its lines."""

import json

import schemathesis

NDJSON = ("application/x-ndjson", "application/jsonl", "application/ndjson")


@schemathesis.serializer(*NDJSON)
def to_ndjson(ctx, value):
    items = value if isinstance(value, list) else [value]
    return {"data": "".join(json.dumps(item) + "\n" for item in items).encode()}


@schemathesis.deserializer(*NDJSON)
def from_ndjson(ctx, response):
    text = response.content.decode("utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]
