#!/usr/bin/env python3
"""A small, bounded load script: submits N fresh receipts to a running platform with a fixed
number of concurrent clients, waits until every receipt reached a final status, and prints
throughput and latency figures.

    cargo run -p receipts -- up                      # in one terminal
    python3 load-tests/submit_burst.py --count 1000  # in another

Standard library only. Documents come from `receipts sample` (generated before the clock
starts). End-to-end latency is the time from sending the submission to the moment the final
event was recorded in the status store (its `recorded_at`), so it needs no polling precision;
client and server share this machine's clock.

Without --rate it is a closed-loop burst (each client sends its next request when the previous
one is answered): it finds the throughput, and its end-to-end latency includes queueing once the
submit rate exceeds what the pipeline sustains. With --rate it paces submissions at a fixed rate
(as long as the clients keep up), which gives the latency below saturation. The proper open-loop
load generator comes later.
"""

import argparse
import concurrent.futures
import datetime
import http.client
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse

FINAL = {"ACCEPTED", "REJECTED", "FAILED"}


def percentile(values, p):
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))
    return ordered[index]


def parse_time(text):
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


class Client:
    """One keep-alive HTTP connection per thread."""

    local = threading.local()

    def __init__(self, base, key):
        self.url = urllib.parse.urlsplit(base)
        self.key = key

    def conn(self):
        if getattr(self.local, "conn", None) is None:
            self.local.conn = http.client.HTTPConnection(self.url.hostname, self.url.port or 80, timeout=30)
        return self.local.conn

    def request(self, method, path, body=None, headers=None):
        headers = dict(headers or {})
        headers["Authorization"] = f"Bearer {self.key}"
        for attempt in range(2):
            try:
                conn = self.conn()
                conn.request(method, path, body=body, headers=headers)
                response = conn.getresponse()
                return response.status, response.read()
            except (http.client.HTTPException, OSError):
                self.local.conn = None
                if attempt == 1:
                    raise
        raise RuntimeError("unreachable")


def generate(receipts_bin, receipt_type, count, seed_base, invalid_every):
    documents = []
    for i in range(count):
        args = [receipts_bin, "sample", "--type", receipt_type, "--seed", str(seed_base + i)]
        if invalid_every and i % invalid_every == 0:
            args.append("--invalid")
        documents.append(subprocess.run(args, check=True, capture_output=True).stdout)
    return documents


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", default="http://127.0.0.1:8080")
    parser.add_argument("--key-file", default="data/dev-api-key")
    parser.add_argument("--count", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rate", type=float, default=0,
                        help="receipts per second to send at (0: as fast as the clients go)")
    parser.add_argument("--type", default="retail-receipt/v1")
    parser.add_argument("--invalid-every", type=int, default=0, help="make every n-th receipt invalid")
    parser.add_argument("--receipts-bin", default="target/debug/receipts")
    parser.add_argument("--timeout", type=float, default=300, help="seconds to wait for final statuses")
    args = parser.parse_args()
    if not 1 <= args.count <= 20000:
        sys.exit("--count must be between 1 and 20000 (this script is bounded)")

    key = open(args.key_file).read().strip()
    content_type = "application/xml" if "xml" in args.type else "application/json"
    seed_base = int(time.time() * 1000) * 100
    print(f"generating {args.count} documents with {args.receipts_bin} sample ...", flush=True)
    documents = generate(args.receipts_bin, args.type, args.count, seed_base, args.invalid_every)
    client = Client(args.base, key)
    run_id = os.urandom(4).hex()

    def submit(i):
        if args.rate > 0:
            # Paced: request i is due at start + i / rate (it waits for a free client if late).
            delay = started + i / args.rate - time.time()
            if delay > 0:
                time.sleep(delay)
        headers = {
            "Content-Type": content_type,
            "Receipt-Type": args.type,
            "Idempotency-Key": f"load-{run_id}-{i}",
        }
        sent = time.time()
        status, body = client.request("POST", "/v1/receipts", documents[i], headers)
        latency = time.time() - sent
        if status != 202:
            raise RuntimeError(f"submission {i}: HTTP {status}: {body[:200]!r}")
        return json.loads(body)["id"], sent, latency

    pace = f" at {args.rate:g}/s" if args.rate > 0 else ""
    print(f"submitting {args.count} receipts{pace} with {args.concurrency} concurrent clients ...", flush=True)
    started = time.time()
    with concurrent.futures.ThreadPoolExecutor(args.concurrency) as pool:
        results = list(pool.map(submit, range(args.count)))
    submit_elapsed = time.time() - started
    latencies = [latency for _, _, latency in results]

    deadline = time.time() + args.timeout
    pending = {rid: sent for rid, sent, _ in results}
    finished_at = {}
    end_to_end = []
    statuses = {}
    while pending and time.time() < deadline:
        def check(item):
            rid, sent = item
            status, body = client.request("GET", f"/v1/receipts/{rid}")
            receipt = json.loads(body) if status == 200 else {}
            return rid, sent, receipt

        with concurrent.futures.ThreadPoolExecutor(args.concurrency) as pool:
            for rid, sent, receipt in pool.map(check, list(pending.items())):
                if receipt.get("status") in FINAL:
                    final = [t for t in receipt["timeline"] if t["status"] == receipt["status"]]
                    finished_at[rid] = parse_time(final[0]["recorded_at"])
                    end_to_end.append(finished_at[rid] - sent)
                    statuses[receipt["status"]] = statuses.get(receipt["status"], 0) + 1
                    del pending[rid]
        if pending:
            time.sleep(0.2)
    if pending:
        sys.exit(f"{len(pending)} receipts did not reach a final status within {args.timeout}s")

    ms = lambda seconds: f"{seconds * 1000:.1f} ms"
    print()
    print(f"receipts            {args.count} ({', '.join(f'{k} {v}' for k, v in sorted(statuses.items()))})")
    print(f"concurrency         {args.concurrency}{pace}")
    print(f"submit throughput   {args.count / submit_elapsed:.1f} receipts/s (202s in {submit_elapsed:.2f} s)")
    print(f"submit latency      p50 {ms(percentile(latencies, 50))}  p90 {ms(percentile(latencies, 90))}  "
          f"p99 {ms(percentile(latencies, 99))}  max {ms(max(latencies))}")
    print(f"submit -> final     p50 {ms(percentile(end_to_end, 50))}  p90 {ms(percentile(end_to_end, 90))}  "
          f"p99 {ms(percentile(end_to_end, 99))}  max {ms(max(end_to_end))}")
    pipeline_elapsed = max(finished_at.values()) - started
    print(f"pipeline throughput {args.count / pipeline_elapsed:.1f} receipts/s "
          f"(all {args.count} final {pipeline_elapsed:.2f} s after the first submission)")
    print(f"mean submit latency {ms(statistics.mean(latencies))}")


if __name__ == "__main__":
    main()
