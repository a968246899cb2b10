//! The optional state file: one JSON line per record change, appended and fsync'd before the
//! registry answers, replayed (last line per key wins) at start. One writer thread batches the
//! appends of concurrent requests into a single fsync.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

use crate::Error;
use crate::api::Record;
use crate::config::RegistryKind;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    kind: RegistryKind,
    record: Record,
}

enum Op {
    Append(Vec<u8>, oneshot::Sender<io::Result<()>>),
    Truncate(oneshot::Sender<io::Result<()>>),
}

/// Handle to the writer thread; the thread ends when the handle is dropped.
pub(crate) struct Journal {
    kind: RegistryKind,
    tx: mpsc::UnboundedSender<Op>,
}

impl Journal {
    /// Opens (creating it and its directory if needed) and replays the state file of a `kind`
    /// registry. A torn last line (a crash mid-append) is cut off; any other bad line is an error.
    pub fn open(path: &Path, kind: RegistryKind) -> Result<(Self, Vec<Record>), Error> {
        let fail = |source: io::Error| Error::StateFile {
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(fail)?;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)
            .map_err(fail)?;
        let mut content = Vec::new();
        file.read_to_end(&mut content).map_err(fail)?;

        let complete = content
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        if complete < content.len() {
            tracing::warn!(
                path = %path.display(),
                bytes = content.len() - complete,
                "state file ends with a torn line; cutting it off"
            );
            file.set_len(complete as u64).map_err(fail)?;
            file.sync_data().map_err(fail)?;
        }
        let records = replay(path, kind, &content[..complete])?;
        file.seek(SeekFrom::End(0)).map_err(fail)?;

        let (tx, rx) = mpsc::unbounded_channel();
        std::thread::Builder::new()
            .name(format!("{kind}-journal"))
            .spawn(move || write_loop(file, rx))
            .map_err(fail)?;
        Ok((Self { kind, tx }, records))
    }

    /// Appends `record` and waits until it is on disk.
    pub async fn append(&self, record: &Record) -> io::Result<()> {
        let mut line = serde_json::to_vec(&Line {
            kind: self.kind,
            record: record.clone(),
        })?;
        line.push(b'\n');
        let (ack, done) = oneshot::channel();
        self.send(Op::Append(line, ack))?;
        done.await.map_err(|_| closed())?
    }

    /// Empties the file (admin reset).
    pub async fn truncate(&self) -> io::Result<()> {
        let (ack, done) = oneshot::channel();
        self.send(Op::Truncate(ack))?;
        done.await.map_err(|_| closed())?
    }

    fn send(&self, op: Op) -> io::Result<()> {
        self.tx.send(op).map_err(|_| closed())
    }
}

fn closed() -> io::Error {
    io::Error::other("the state file writer has stopped")
}

fn replay(path: &Path, kind: RegistryKind, content: &[u8]) -> Result<Vec<Record>, Error> {
    let corrupt = |line: usize, message: String| Error::CorruptStateFile {
        path: PathBuf::from(path),
        line,
        message,
    };
    let mut records: HashMap<String, (usize, Record)> = HashMap::new();
    for (index, raw) in content.split(|&b| b == b'\n').enumerate() {
        let number = index + 1;
        if raw.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let line: Line = serde_json::from_slice(raw).map_err(|e| corrupt(number, e.to_string()))?;
        if line.kind != kind {
            return Err(corrupt(
                number,
                format!("a {} record in a {kind} registry's state file", line.kind),
            ));
        }
        let order = records
            .get(&line.record.key)
            .map_or(number, |(first, _)| *first);
        records.insert(line.record.key.clone(), (order, line.record));
    }
    // First-seen order, so serial numbers and listings are stable across restarts.
    let mut records: Vec<_> = records.into_values().collect();
    records.sort_by_key(|(order, _)| *order);
    Ok(records.into_iter().map(|(_, record)| record).collect())
}

fn write_loop(mut file: File, mut rx: mpsc::UnboundedReceiver<Op>) {
    let mut pending: Vec<oneshot::Sender<io::Result<()>>> = Vec::new();
    let mut buffer: Vec<u8> = Vec::new();
    while let Some(first) = rx.blocking_recv() {
        let mut next = Some(first);
        while let Some(op) = next.take().or_else(|| rx.try_recv().ok()) {
            match op {
                Op::Append(line, ack) => {
                    buffer.extend_from_slice(&line);
                    pending.push(ack);
                }
                Op::Truncate(ack) => {
                    flush(&mut file, &mut buffer, &mut pending);
                    let result = file.set_len(0).and_then(|()| file.sync_all());
                    let _ = ack.send(result);
                }
            }
        }
        flush(&mut file, &mut buffer, &mut pending);
    }
}

/// Writes and fsyncs the batch, then acknowledges every append in it.
fn flush(
    file: &mut File,
    buffer: &mut Vec<u8>,
    pending: &mut Vec<oneshot::Sender<io::Result<()>>>,
) {
    if pending.is_empty() {
        return;
    }
    let before = file.metadata().map(|m| m.len());
    let result = file.write_all(buffer).and_then(|()| file.sync_data());
    if let Err(error) = &result {
        tracing::error!(%error, "cannot write the state file");
        // Cut off a partial write so that later lines do not follow a torn one.
        if let Ok(len) = before {
            let _ = file.set_len(len);
        }
    }
    buffer.clear();
    for ack in pending.drain(..) {
        let _ = ack.send(match &result {
            Ok(()) => Ok(()),
            Err(error) => Err(io::Error::new(error.kind(), error.to_string())),
        });
    }
}
