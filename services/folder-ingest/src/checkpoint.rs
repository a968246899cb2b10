//! Progress of a file, kept in the folder's work directory (`<dir>/.receipts-ingest/`) under
//! the file's content hash: written after every acknowledged batch, atomically (a temporary
//! file, flushed, then renamed over the old one), so a crash leaves the previous checkpoint or
//! the new one, never a torn one. Records before `done` are not sent again after a restart;
//! records after it may have been sent already, and the gateway replays them (same keys).

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::survey::FileHash;

/// The progress of one file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The file's SHA-256 (hex).
    pub hash: String,
    /// The name it had when it was taken (for people reading the work directory).
    pub name: String,
    /// Its records.
    pub records: u64,
    /// Records 1..=done are finished: acknowledged by the gateway or refused.
    pub done: u64,
    /// Of those: new receipts, replays of earlier submissions, refused.
    pub accepted: u64,
    pub replayed: u64,
    pub refused: u64,
    /// Length of the work report when `done` was reached (lines past it are cut on resume).
    pub report_bytes: u64,
    /// Length of the list of accepted receipts (`--wait` only), likewise.
    #[serde(default)]
    pub accepted_bytes: u64,
    /// `--wait` polled every accepted receipt to a terminal status (or gave up).
    #[serde(default)]
    pub waited: bool,
    /// The file is finished and being moved to `done/` under this name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finishing: Option<String>,
}

impl Checkpoint {
    /// A checkpoint for a file not started yet.
    pub fn new(hash: &FileHash, name: &str, records: u64) -> Self {
        Self {
            hash: hash.as_str().to_owned(),
            name: name.to_owned(),
            records,
            ..Self::default()
        }
    }

    /// Where the checkpoint of `hash` is kept.
    pub fn path(work: &Path, hash: &FileHash) -> PathBuf {
        work.join(format!("{}.checkpoint", hash.short()))
    }

    /// The checkpoint of `hash`, if the file was started. A checkpoint of another content under
    /// the same short hash (practically impossible) or an unreadable one counts as none.
    pub fn load(work: &Path, hash: &FileHash) -> io::Result<Option<Self>> {
        let path = Self::path(work, hash);
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        match serde_json::from_str::<Self>(&text) {
            Ok(checkpoint) if checkpoint.hash == hash.as_str() => Ok(Some(checkpoint)),
            Ok(_) => Ok(None),
            Err(error) => {
                tracing::warn!(path = %path.display(), %error, "unreadable checkpoint: the file starts over (the gateway replays what it has)");
                Ok(None)
            }
        }
    }

    /// Writes the checkpoint atomically and durably.
    pub fn save(&self, work: &Path) -> io::Result<()> {
        let short = self.hash.get(..32).unwrap_or(&self.hash);
        let path = work.join(format!("{short}.checkpoint"));
        let temporary = path.with_extension("checkpoint.tmp");
        let mut file = File::create(&temporary)?;
        serde_json::to_writer(&mut file, self)?;
        file.write_all(b"\n")?;
        file.sync_all()?;
        fs::rename(&temporary, &path)
    }

    pub fn remove(work: &Path, hash: &FileHash) -> io::Result<()> {
        match fs::remove_file(Self::path(work, hash)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_atomic_replace() {
        let dir = tempfile::tempdir().expect("dir");
        let hash = FileHash::of(&[7; 32]);
        assert_eq!(Checkpoint::load(dir.path(), &hash).expect("load"), None);
        let mut checkpoint = Checkpoint::new(&hash, "day.ndjson", 1000);
        checkpoint.save(dir.path()).expect("save");
        checkpoint.done = 500;
        checkpoint.accepted = 498;
        checkpoint.refused = 2;
        checkpoint.report_bytes = 321;
        checkpoint.save(dir.path()).expect("save again");
        assert_eq!(
            Checkpoint::load(dir.path(), &hash).expect("load"),
            Some(checkpoint)
        );
        let names: Vec<String> = fs::read_dir(dir.path())
            .expect("list")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, [format!("{}.checkpoint", hash.short())]);
        Checkpoint::remove(dir.path(), &hash).expect("remove");
        Checkpoint::remove(dir.path(), &hash).expect("removing twice is fine");
        assert_eq!(Checkpoint::load(dir.path(), &hash).expect("load"), None);
    }

    #[test]
    fn a_damaged_or_foreign_checkpoint_counts_as_none() {
        let dir = tempfile::tempdir().expect("dir");
        let hash = FileHash::of(&[7; 32]);
        fs::write(Checkpoint::path(dir.path(), &hash), "{not json").expect("write");
        assert_eq!(Checkpoint::load(dir.path(), &hash).expect("load"), None);
        let mut other = Checkpoint::new(&FileHash::of(&[7; 32]), "x", 1);
        other.hash.replace_range(40..41, "f");
        fs::write(
            Checkpoint::path(dir.path(), &hash),
            serde_json::to_string(&other).expect("json"),
        )
        .expect("write");
        assert_eq!(Checkpoint::load(dir.path(), &hash).expect("load"), None);
    }
}
