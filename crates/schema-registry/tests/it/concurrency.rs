//! Concurrent registrations are serialized: one schema, one id, one version.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde_json::json;
use tokio::task::JoinSet;

use crate::helpers::{RECEIPT_V1, spawn_app};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_registrations_of_one_schema_get_one_id() {
    let dir = tempfile::tempdir().expect("tempdir");
    let app = Arc::new(spawn_app(&dir.path().join("sr.json")).await);
    let mut tasks = JoinSet::new();
    for _ in 0..20 {
        let app = Arc::clone(&app);
        tasks.spawn(async move { app.register("receipts.submitted-value", RECEIPT_V1).await });
    }
    let ids: BTreeSet<u64> = tasks.join_all().await.into_iter().collect();
    assert_eq!(ids, BTreeSet::from([1]));
    assert_eq!(
        app.get("/subjects/receipts.submitted-value/versions").await,
        (200, json!([1]))
    );
    let app = Arc::into_inner(app).expect("all tasks done");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_registrations_of_different_schemas_get_distinct_ids() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("sr.json");
    let app = Arc::new(spawn_app(&path).await);
    let mut tasks = JoinSet::new();
    for n in 0..20 {
        let app = Arc::clone(&app);
        tasks.spawn(async move {
            let schema = format!(r#"{{"type":"fixed","name":"F{n}","size":{}}}"#, n + 1);
            let id = app.register(&format!("s{n}-value"), &schema).await;
            (n, id)
        });
    }
    let registered = tasks.join_all().await;
    let ids: BTreeSet<u64> = registered.iter().map(|(_, id)| *id).collect();
    assert_eq!(ids, (1..=20).collect());
    let app = Arc::into_inner(app).expect("all tasks done");
    app.stop().await;

    // Every one of them reached the file.
    let app = spawn_app(&path).await;
    for (n, id) in registered {
        let (status, body) = app.get(&format!("/subjects/s{n}-value/versions/1")).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["id"], id);
    }
    app.stop().await;
}
