//! The use cases over a real SQLite store: what each rule does to stored records, tenant
//! isolation, and concurrent callers.

mod receipts;
mod webhooks;

use receipts_store::{SqliteOptions, SqliteStore, Stores};
use tempfile::TempDir;

async fn stores() -> (TempDir, Stores) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = SqliteStore::open(&dir.path().join("receipts.db"), &SqliteOptions::default())
        .await
        .expect("store");
    (dir, Stores::of(store))
}
