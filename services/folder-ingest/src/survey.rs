//! The first pass over a file: its content hash (which names it: the same bytes under any name
//! are the same file) and its number of records, and whether it can be read to the end at all.
//! Bounded memory: the file streams through the hash and the record reader once.

use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use sha2::{Digest, Sha256};

use crate::format::Format;
use crate::metrics;
use crate::read::{Limits, ReadError, records};

/// A file's SHA-256, hex.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileHash(String);

impl FileHash {
    pub fn of(digest: &[u8]) -> Self {
        Self(hex::encode(digest))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Its first 128 bits: the file's name in keys and in the work directory.
    pub fn short(&self) -> &str {
        self.0.get(..32).unwrap_or(&self.0)
    }

    /// The idempotency key of record `number` of this file: the same record of the same
    /// content always has the same key, so the gateway records it once however often it is sent.
    pub fn key(&self, number: u64) -> String {
        format!("folder:{}:{number}", self.short())
    }
}

/// What the first pass found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Survey {
    pub hash: FileHash,
    pub records: u64,
    pub bytes: u64,
}

/// Reads `path` once: hash, record count, structure.
pub fn survey(path: &Path, format: Format, limits: Limits) -> Result<Survey, ReadError> {
    let hasher = Arc::new(Mutex::new(Sha256::new()));
    let file = File::open(path)?;
    let tap = Tap::new(file, Some(Arc::clone(&hasher)));
    let read = Arc::clone(&tap.read);
    let mut count = 0;
    for record in records(format, BufReader::new(tap), limits) {
        record?;
        count += 1;
    }
    // Every reader reads to the end of a well-formed file; hash whatever one left anyway.
    let hashed = read.load(std::sync::atomic::Ordering::Relaxed);
    let mut rest = File::open(path)?;
    rest.seek(SeekFrom::Start(hashed))?;
    let mut tail = Tap::new(rest, Some(Arc::clone(&hasher)));
    io::copy(&mut tail, &mut io::sink())?;
    let bytes = hashed + tail.read.load(std::sync::atomic::Ordering::Relaxed);
    let digest = hasher
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone()
        .finalize();
    Ok(Survey {
        hash: FileHash::of(&digest),
        records: count,
        bytes,
    })
}

/// A reader that counts (and optionally hashes) what passes through it.
pub struct Tap<R> {
    inner: R,
    hasher: Option<Arc<Mutex<Sha256>>>,
    pub read: Arc<std::sync::atomic::AtomicU64>,
}

impl<R> Tap<R> {
    pub fn new(inner: R, hasher: Option<Arc<Mutex<Sha256>>>) -> Self {
        Self {
            inner,
            hasher,
            read: Arc::default(),
        }
    }
}

impl<R: Read> Read for Tap<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(hasher) = &self.hasher {
            hasher
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .update(&buf[..n]);
        }
        self.read
            .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        metrics::bytes_read(n);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        max_record_bytes: 1024,
    };

    #[test]
    fn the_same_content_has_the_same_hash_and_keys_under_any_name() {
        let dir = tempfile::tempdir().expect("dir");
        let a = dir.path().join("a.ndjson");
        let b = dir.path().join("renamed.jsonl");
        std::fs::write(&a, "{\"n\":1}\n\n{\"n\":2}\n").expect("write");
        std::fs::write(&b, "{\"n\":1}\n\n{\"n\":2}\n").expect("write");
        let first = survey(&a, Format::Ndjson, LIMITS).expect("survey");
        let second = survey(&b, Format::Ndjson, LIMITS).expect("survey");
        assert_eq!(first, second);
        assert_eq!(first.records, 2);
        assert_eq!(first.bytes, 17);
        // sha256 of the bytes, as `sha256sum` prints it.
        let expected = hex::encode(Sha256::digest(b"{\"n\":1}\n\n{\"n\":2}\n"));
        assert_eq!(first.hash.as_str(), expected);
        assert_eq!(first.hash.key(7), format!("folder:{}:7", &expected[..32]));
        std::fs::write(&b, "{\"n\":1}\n{\"n\":3}\n").expect("write");
        let changed = survey(&b, Format::Ndjson, LIMITS).expect("survey");
        assert_ne!(changed.hash, first.hash);
    }

    #[test]
    fn a_broken_file_is_found_in_the_first_pass() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("a.json");
        std::fs::write(&path, "[{\"n\":1}, {\"n\":2}").expect("write");
        assert!(matches!(
            survey(&path, Format::Json, LIMITS),
            Err(ReadError::Malformed { .. })
        ));
    }
}
