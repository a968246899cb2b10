//! Cutting a file's records into batch requests: consecutive records, at most `batch_size` of
//! them and `max_batch_bytes` of envelopes, each sent under its own deterministic key.

use crate::gateway::Envelope;
use crate::read::{Content, Record};
use crate::report::Entry;
use crate::survey::FileHash;

/// How batches are cut, and what their envelopes say.
#[derive(Debug, Clone)]
pub struct Plan {
    pub batch_size: usize,
    pub max_batch_bytes: usize,
    pub receipt_type: String,
    pub content_type: &'static str,
}

/// A record to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub number: u64,
    pub line: u64,
    pub key: String,
    /// Its envelope, one NDJSON line without the newline.
    pub envelope: String,
}

/// Consecutive records `first..=last`: every one is an item or unreadable.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Batch {
    pub first: u64,
    pub last: u64,
    pub items: Vec<Item>,
    /// Records that cannot be sent, already as report entries.
    pub unreadable: Vec<Entry>,
    /// Bytes of the items' envelopes (with newlines).
    pub bytes: usize,
}

impl Batch {
    pub fn records(&self) -> usize {
        self.items.len() + self.unreadable.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records() == 0
    }

    /// The NDJSON body of `items`.
    pub fn body<'a>(items: impl Iterator<Item = &'a Item>) -> Vec<u8> {
        let mut body = Vec::new();
        for item in items {
            body.extend_from_slice(item.envelope.as_bytes());
            body.push(b'\n');
        }
        body
    }
}

/// Collects records into batches.
#[derive(Debug)]
pub struct Batcher {
    plan: Plan,
    hash: FileHash,
    current: Batch,
}

impl Batcher {
    pub fn new(plan: Plan, hash: FileHash) -> Self {
        Self {
            plan,
            hash,
            current: Batch::default(),
        }
    }

    /// Adds a record; returns the batches it completed (at most two: one full before it, by
    /// bytes, and one full with it, by count).
    pub fn push(&mut self, record: Record) -> Vec<Batch> {
        let mut full = Vec::new();
        let key = self.hash.key(record.number);
        match record.content {
            Content::Document(document) => {
                let envelope = Envelope {
                    receipt_type: &self.plan.receipt_type,
                    content_type: self.plan.content_type,
                    idempotency_key: &key,
                    document: &document,
                };
                match serde_json::to_string(&envelope) {
                    Ok(envelope) => {
                        if !self.current.items.is_empty()
                            && self.current.bytes + envelope.len() + 1 > self.plan.max_batch_bytes
                        {
                            full.push(self.take());
                        }
                        self.current.bytes += envelope.len() + 1;
                        self.current.items.push(Item {
                            number: record.number,
                            line: record.line,
                            key,
                            envelope,
                        });
                    }
                    Err(error) => self.current.unreadable.push(Entry::unreadable(
                        record.number,
                        record.line,
                        &key,
                        format!("cannot be put in an envelope: {error}"),
                    )),
                }
            }
            Content::Unreadable(why) => {
                self.current.unreadable.push(Entry::unreadable(
                    record.number,
                    record.line,
                    &key,
                    why,
                ));
            }
        }
        if self.current.first == 0 {
            self.current.first = record.number;
        }
        self.current.last = record.number;
        if self.current.records() >= self.plan.batch_size {
            full.push(self.take());
        }
        full
    }

    /// The last, partial batch.
    pub fn finish(mut self) -> Option<Batch> {
        (!self.current.is_empty()).then(|| self.take())
    }

    fn take(&mut self) -> Batch {
        std::mem::take(&mut self.current)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(batch_size: usize, max_batch_bytes: usize) -> Plan {
        Plan {
            batch_size,
            max_batch_bytes,
            receipt_type: "retail-receipt/v1".into(),
            content_type: "application/json",
        }
    }

    fn record(number: u64, document: &str) -> Record {
        Record {
            number,
            line: number,
            content: Content::Document(document.into()),
        }
    }

    #[test]
    fn batches_are_consecutive_and_bounded_by_count_and_bytes() {
        let hash = FileHash::of(&[1; 32]);
        let mut batcher = Batcher::new(plan(3, 10_000), hash.clone());
        let mut batches = Vec::new();
        for n in 1..=7 {
            if n == 5 {
                batches.extend(batcher.push(Record {
                    number: n,
                    line: n,
                    content: Content::Unreadable("too large".into()),
                }));
            } else {
                batches.extend(batcher.push(record(n, "{\"a\": \"\\\"q\\\"\"}")));
            }
        }
        batches.extend(batcher.finish());
        let ranges: Vec<(u64, u64, usize)> = batches
            .iter()
            .map(|b| (b.first, b.last, b.items.len()))
            .collect();
        assert_eq!(ranges, [(1, 3, 3), (4, 6, 2), (7, 7, 1)]);
        assert_eq!(batches[1].unreadable[0].record, 5);
        let line: serde_json::Value =
            serde_json::from_str(&batches[0].items[0].envelope).expect("json");
        assert_eq!(line["idempotency_key"], hash.key(1));
        assert_eq!(line["document"], "{\"a\": \"\\\"q\\\"\"}");
        assert_eq!(line["receipt_type"], "retail-receipt/v1");
        assert_eq!(line["content_type"], "application/json");

        let mut by_bytes = Batcher::new(plan(100, 250), hash);
        let mut batches = Vec::new();
        for n in 1..=4 {
            batches.extend(by_bytes.push(record(n, "{\"x\": 1}")));
        }
        batches.extend(by_bytes.finish());
        assert!(batches.len() >= 2, "{batches:?}");
        assert!(
            batches
                .iter()
                .all(|b| Batch::body(b.items.iter()).len() <= 250)
        );
        assert_eq!(batches.iter().map(Batch::records).sum::<usize>(), 4);
    }
}
