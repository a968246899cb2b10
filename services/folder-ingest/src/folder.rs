//! The watched folder: which files are taken and when, and where finished ones go.
//!
//! - Taken: regular files with a known extension (`.ndjson`, `.jsonl`, `.json`, `.csv`, `.xml`)
//!   directly in the folder. Names starting with `.` and ending in `.tmp` or `.part` are never
//!   taken: a writer writes `name.tmp` and renames it into place when it is complete (a rename
//!   is atomic), which is the reliable way.
//! - A file is taken once it is quiet: its size and modification time have not changed for the
//!   quiet period as this process has watched it, or its modification time is already older
//!   than the quiet period. A writer that pauses longer than the quiet period mid-file must use
//!   the rename.
//! - Work files live in `.receipts-ingest/` (checkpoints, reports in progress, the lock that
//!   keeps a second ingester out); finished files go to `done/`, reports and unreadable files to
//!   `rejected/`.

use std::collections::{HashMap, HashSet};
use std::fs::{self, File, TryLockError};
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use crate::format::Format;
use crate::{Error, io_error};

/// The work directory's name, inside the folder.
pub const WORK_DIR: &str = ".receipts-ingest";
pub const DONE_DIR: &str = "done";
pub const REJECTED_DIR: &str = "rejected";

/// Names the ingester never takes (besides the unknown extensions).
pub fn ignored(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    name.starts_with('.') || lower.ends_with(".tmp") || lower.ends_with(".part")
}

/// A file that may be taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub path: PathBuf,
    pub name: String,
    pub format: Format,
    pub size: u64,
    pub modified: SystemTime,
}

impl Candidate {
    /// The file as it is now (`None` once it is gone).
    pub fn observe(path: &Path) -> io::Result<Option<Self>> {
        let metadata = match fs::metadata(path) {
            Ok(metadata) => metadata,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let Some(format) = Format::of(path) else {
            return Ok(None);
        };
        if !metadata.is_file() || ignored(&name) {
            return Ok(None);
        }
        Ok(Some(Self {
            path: path.to_path_buf(),
            name,
            format,
            size: metadata.len(),
            modified: metadata.modified()?,
        }))
    }

    /// The same size and modification time.
    pub fn unchanged(&self, other: &Self) -> bool {
        self.size == other.size && self.modified == other.modified
    }
}

/// The watched folder, locked for this process.
#[derive(Debug)]
pub struct Folder {
    dir: PathBuf,
    work: PathBuf,
    done: PathBuf,
    rejected: PathBuf,
    /// Held (locked) while the folder is open.
    _lock: File,
    /// Unknown files already logged.
    noted: HashSet<String>,
}

impl Folder {
    /// Opens `dir` (created if missing), creates its work, `done/` and `rejected/` directories
    /// and takes its lock: a second ingester of the same folder is refused.
    pub fn open(dir: &Path) -> Result<Self, Error> {
        fs::create_dir_all(dir).map_err(io_error(dir))?;
        let metadata = fs::metadata(dir).map_err(io_error(dir))?;
        if !metadata.is_dir() {
            return Err(Error::Config(format!(
                "{} is not a directory",
                dir.display()
            )));
        }
        let work = dir.join(WORK_DIR);
        let done = dir.join(DONE_DIR);
        let rejected = dir.join(REJECTED_DIR);
        for sub in [&work, &done, &rejected] {
            fs::create_dir_all(sub).map_err(io_error(sub))?;
        }
        let lock_path = work.join("lock");
        let lock = File::create(&lock_path).map_err(io_error(&lock_path))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(Error::Busy {
                    dir: dir.to_path_buf(),
                });
            }
            Err(TryLockError::Error(e)) => return Err(io_error(&lock_path)(e)),
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            work,
            done,
            rejected,
            _lock: lock,
            noted: HashSet::new(),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn work(&self) -> &Path {
        &self.work
    }

    pub fn done(&self) -> &Path {
        &self.done
    }

    pub fn rejected(&self) -> &Path {
        &self.rejected
    }

    /// The files that may be taken, oldest first (then by name).
    pub fn candidates(&mut self) -> Result<Vec<Candidate>, Error> {
        let entries = fs::read_dir(&self.dir).map_err(io_error(&self.dir))?;
        let mut candidates = Vec::new();
        for entry in entries {
            let entry = entry.map_err(io_error(&self.dir))?;
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if ignored(&name) || !entry.file_type().is_ok_and(|t| t.is_file()) {
                continue;
            }
            if Format::of(&path).is_none() {
                if self.noted.insert(name.clone()) {
                    tracing::warn!(file = %name, "not a .ndjson, .jsonl, .json, .csv or .xml file: left alone");
                }
                continue;
            }
            if let Some(candidate) = Candidate::observe(&path).map_err(io_error(&path))? {
                candidates.push(candidate);
            }
        }
        candidates.sort_by(|a, b| (a.modified, &a.name).cmp(&(b.modified, &b.name)));
        Ok(candidates)
    }

    /// A name for a finished `name` that is free in `done/` and `rejected/`: `name`, else
    /// `stem-1.ext`, `stem-2.ext`, ...
    pub fn free_name(&self, name: &str) -> String {
        let (stem, extension) = match name.rsplit_once('.') {
            Some((stem, extension)) if !stem.is_empty() => (stem, format!(".{extension}")),
            _ => (name, String::new()),
        };
        let taken = |candidate: &str| {
            self.done.join(candidate).exists()
                || self.rejected.join(candidate).exists()
                || self.rejected.join(report_name(candidate)).exists()
        };
        if !taken(name) {
            return name.to_owned();
        }
        (1u64..)
            .map(|n| format!("{stem}-{n}{extension}"))
            .find(|candidate| !taken(candidate))
            .unwrap_or_else(|| name.to_owned())
    }
}

/// The report of the file finished as `name`.
pub fn report_name(name: &str) -> String {
    format!("{name}.report.ndjson")
}

/// Moves `from` to `to` unless it is already there (a finish resumed after a crash).
pub fn move_file(from: &Path, to: &Path) -> Result<(), Error> {
    match fs::rename(from, to) {
        Err(e) if e.kind() == io::ErrorKind::NotFound && to.exists() => Ok(()),
        result => result.map_err(io_error(from)),
    }
}

/// Tells quiet files from files still being written.
#[derive(Debug)]
pub struct Settling {
    quiet: Duration,
    /// Each file as first seen in its current state, and when.
    seen: HashMap<PathBuf, (Candidate, Instant)>,
}

impl Settling {
    pub fn new(quiet: Duration) -> Self {
        Self {
            quiet,
            seen: HashMap::new(),
        }
    }

    /// The candidates that are quiet now (`now` by the wall clock, `at` by this process's).
    pub fn ready(
        &mut self,
        candidates: Vec<Candidate>,
        now: SystemTime,
        at: Instant,
    ) -> Vec<Candidate> {
        let present: HashSet<PathBuf> = candidates.iter().map(|c| c.path.clone()).collect();
        self.seen.retain(|path, _| present.contains(path));
        let mut ready = Vec::new();
        for candidate in candidates {
            let old = now
                .duration_since(candidate.modified)
                .is_ok_and(|age| age >= self.quiet);
            let since = match self.seen.get(&candidate.path) {
                Some((seen, since)) if seen.unchanged(&candidate) => *since,
                _ => {
                    self.seen
                        .insert(candidate.path.clone(), (candidate.clone(), at));
                    at
                }
            };
            if old || at.duration_since(since) >= self.quiet {
                ready.push(candidate);
            }
        }
        ready
    }

    /// Forgets a file (taken, or gone).
    pub fn forget(&mut self, path: &Path) {
        self.seen.remove(path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidate(name: &str, size: u64, modified: SystemTime) -> Candidate {
        Candidate {
            path: PathBuf::from(name),
            name: name.to_owned(),
            format: Format::Ndjson,
            size,
            modified,
        }
    }

    #[test]
    fn temporary_and_hidden_names_are_ignored() {
        for name in [
            ".x.ndjson",
            "x.ndjson.tmp",
            "x.NDJSON.PART",
            ".receipts-ingest",
        ] {
            assert!(ignored(name), "{name}");
        }
        assert!(!ignored("x.ndjson"));
    }

    #[test]
    fn a_file_is_ready_once_quiet_for_the_period() {
        let quiet = Duration::from_secs(2);
        let mut settling = Settling::new(quiet);
        let wall = SystemTime::now();
        let start = Instant::now();
        // Being written: modified just now.
        let growing = candidate("a.ndjson", 10, wall);
        assert!(
            settling
                .ready(vec![growing.clone()], wall, start)
                .is_empty()
        );
        // Still growing a second later: the clock starts again.
        let later = start + Duration::from_secs(1);
        let grown = candidate("a.ndjson", 20, wall + Duration::from_secs(1));
        assert!(settling.ready(vec![grown.clone()], wall, later).is_empty());
        // Unchanged, but not yet for the quiet period.
        let t = later + Duration::from_millis(1500);
        assert!(settling.ready(vec![grown.clone()], wall, t).is_empty());
        // Unchanged for 2 s of our own clock (whatever the file's time says: a writer's clock
        // may be ahead).
        let t = later + quiet;
        assert_eq!(settling.ready(vec![grown.clone()], wall, t), vec![grown]);
    }

    #[test]
    fn a_file_modified_long_ago_is_ready_at_once() {
        let mut settling = Settling::new(Duration::from_secs(2));
        let wall = SystemTime::now();
        let old = candidate("b.ndjson", 10, wall - Duration::from_secs(60));
        assert_eq!(
            settling.ready(vec![old.clone()], wall, Instant::now()),
            vec![old]
        );
    }

    #[test]
    fn the_folder_is_locked_and_names_are_freed() {
        let dir = tempfile::tempdir().expect("dir");
        let folder = Folder::open(dir.path()).expect("open");
        assert!(matches!(Folder::open(dir.path()), Err(Error::Busy { .. })));
        assert_eq!(folder.free_name("a.ndjson"), "a.ndjson");
        fs::write(folder.done().join("a.ndjson"), "").expect("write");
        fs::write(folder.rejected().join("a-1.ndjson.report.ndjson"), "").expect("write");
        assert_eq!(folder.free_name("a.ndjson"), "a-2.ndjson");
        assert_eq!(folder.free_name("noext"), "noext");
        drop(folder);
        Folder::open(dir.path()).expect("the lock goes with the process");
    }

    #[test]
    fn candidates_are_known_quiet_files() {
        let dir = tempfile::tempdir().expect("dir");
        let mut folder = Folder::open(dir.path()).expect("open");
        for name in ["a.ndjson", "b.csv", "c.txt", "d.json.tmp", ".e.xml"] {
            fs::write(dir.path().join(name), "x").expect("write");
        }
        fs::create_dir(dir.path().join("f.json")).expect("dir");
        let names: Vec<String> = folder
            .candidates()
            .expect("list")
            .into_iter()
            .map(|c| c.name)
            .collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(sorted, ["a.ndjson", "b.csv"]);
    }
}
