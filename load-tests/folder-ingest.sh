#!/usr/bin/env bash
# Watched-folder ingest rate: one NDJSON file of N unique valid retail receipts (default 100,000)
# through `receipts ingest-folder --once` against `receipts up`, both from one build of the
# receipts binary, on free loopback ports and a scratch data directory (nothing of ./data is
# touched). Prints the command's line for the file (records, time, records/s), then stops the
# platform. The rate is the ingester's: every record acknowledged by the gateway (durable in
# Kafka), not yet validated and registered (the pipeline works the backlog off behind it).
#
#   cargo build --release -p receipts
#   load-tests/folder-ingest.sh [RECORDS] [-- extra ingest-folder flags, e.g. --concurrency 4]
#
# BIN names another binary (default target/release/receipts); KEEP=1 keeps the scratch
# directory (logs, data, done/).
set -euo pipefail
cd "$(dirname "$0")/.."

records="${1:-100000}"
shift || true
[ "${1:-}" = "--" ] && shift
bin="${BIN:-target/release/receipts}"
[ -x "$bin" ] || {
    echo "no $bin: cargo build --release -p receipts" >&2
    exit 1
}

work="$(mktemp -d)"
up_pid=""
cleanup() {
    if [ -n "$up_pid" ]; then
        kill -INT "$up_pid" 2>/dev/null || true
        wait "$up_pid" 2>/dev/null || true
    fi
    if [ "${KEEP:-0}" = 1 ]; then
        echo "kept $work"
    else
        rm -rf "$work"
    fi
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
kafka="127.0.0.1:$(free_port)"
registry="http://127.0.0.1:$(free_port)"
gateway="127.0.0.1:$(free_port)"
tax="127.0.0.1:$(free_port)"
logistics="127.0.0.1:$(free_port)"
export RECEIPTS_KAFKA__BOOTSTRAP_SERVERS="$kafka"
export RECEIPTS_SCHEMA_REGISTRY__URL="$registry"
export RECEIPTS_GATEWAY__LISTEN="$gateway"
export RECEIPTS_GATEWAY__PUBLIC_URL="http://$gateway"
export RECEIPTS_MOCKS__TAX__LISTEN="$tax"
export RECEIPTS_MOCKS__LOGISTICS__LISTEN="$logistics"

# The file: every line a valid retail receipt with its own receipt number, built from a few
# generated samples (`receipts sample`).
mkdir -p "$work/inbox"
for seed in $(seq 1 20); do
    "$bin" --data-dir "$work/data" sample --type retail-receipt/v1 --seed "$seed"
done | python3 -c '
import json, sys
records = int(sys.argv[1])
decoder, text, samples = json.JSONDecoder(), sys.stdin.read(), []
position = 0
while position < len(text):
    while position < len(text) and text[position].isspace():
        position += 1
    if position == len(text):
        break
    sample, position = decoder.raw_decode(text, position)
    samples.append(sample)
if not samples:
    sys.exit("no sample receipts")
with open(sys.argv[2], "w") as out:
    for n in range(records):
        receipt = dict(samples[n % len(samples)])
        receipt["receipt_number"] = f"FOLDER-{n:07d}"
        out.write(json.dumps(receipt, separators=(",", ":")) + "\n")
' "$records" "$work/inbox/load.ndjson.tmp"
mv "$work/inbox/load.ndjson.tmp" "$work/inbox/load.ndjson"
echo "$(du -h "$work/inbox/load.ndjson" | cut -f1) file of $records records"

"$bin" --data-dir "$work/data" up >"$work/up.log" 2>&1 &
up_pid=$!
for _ in $(seq 1 180); do
    if curl -fsS "http://$gateway/readyz" >/dev/null 2>&1; then
        break
    fi
    kill -0 "$up_pid" 2>/dev/null || {
        echo "receipts up stopped:" >&2
        tail -n 20 "$work/up.log" >&2
        exit 1
    }
    sleep 1
done
curl -fsS "http://$gateway/readyz" >/dev/null
echo "receipts up ready at http://$gateway"

key="$(cat "$work/data/dev-api-key")"
env -u RECEIPTS_KAFKA__BOOTSTRAP_SERVERS -u RECEIPTS_SCHEMA_REGISTRY__URL \
    -u RECEIPTS_GATEWAY__LISTEN -u RECEIPTS_GATEWAY__PUBLIC_URL \
    -u RECEIPTS_MOCKS__TAX__LISTEN -u RECEIPTS_MOCKS__LOGISTICS__LISTEN \
    RECEIPTS_KEY="$key" \
    "$bin" ingest-folder "$work/inbox" --once --no-progress --quiet-period 0s \
    --url "http://$gateway" "$@"
