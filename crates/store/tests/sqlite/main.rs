//! The SQLite backend: the conformance suite, then what only SQLite has (files, schema
//! migrations, group commit, the threads SQLite runs on, other processes on the same file).

mod corrupt;
mod files;
mod migrations;
mod processes;
mod writer;

use std::path::Path;

use receipts_store::{SqliteOptions, SqliteStore, Stores};
use tempfile::TempDir;

/// A store on a fresh file in its own temporary directory (deleted when the `TempDir` drops).
async fn open() -> (Stores, TempDir) {
    let (dir, store) = fresh().await;
    (Stores::of(store), dir)
}

async fn fresh() -> (TempDir, SqliteStore) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = open_at(&db(dir.path())).await;
    (dir, store)
}

/// The database file of a test directory.
fn db(dir: &Path) -> std::path::PathBuf {
    dir.join("receipts.db")
}

async fn open_at(path: &Path) -> SqliteStore {
    SqliteStore::open(path, &SqliteOptions::default())
        .await
        .expect("open the store")
}

receipts_store::conformance_suite!(open);
