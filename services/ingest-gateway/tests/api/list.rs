//! `GET /v1/receipts`: pages, cursors, filters, NDJSON, tenant isolation and bad input. The
//! receipts are stored as the status projector would store them.

use std::collections::HashSet;

use futures::StreamExt;
use receipts_domain::{ReceiptRecord, Status, TenantId};
use receipts_store::Cas;
use receipts_store::conformance::ReceiptFixture;
use serde_json::Value;

use crate::helpers::{TestApp, assert_problem};

fn acme() -> TenantId {
    TenantId::parse("acme").expect("tenant")
}

/// Stores `n` new receipts of `tenant` (concurrently: the store commits them in groups),
/// REJECTED when `rejected(i)`, else RECEIVED; returns them in id order.
async fn seed(
    app: &TestApp,
    tenant: &TenantId,
    n: usize,
    rejected: impl Fn(usize) -> bool,
) -> Vec<ReceiptRecord> {
    // Fixtures first, in order: their ids are time-ordered.
    let records: Vec<ReceiptRecord> = (0..n)
        .map(|i| {
            let fx = ReceiptFixture::for_tenant(tenant.clone());
            if rejected(i) {
                fx.record(&[fx.submitted(), fx.rejected()])
            } else {
                fx.record(&[fx.submitted()])
            }
        })
        .collect();
    let receipts = app.stores.receipts.clone();
    futures::stream::iter(records.clone())
        .for_each_concurrent(256, |record| {
            let receipts = receipts.clone();
            async move {
                let written = receipts.save_receipt(&record, 0).await.expect("save");
                assert_eq!(written, Cas::Written);
            }
        })
        .await;
    records
}

async fn page(app: &TestApp, key: &str, query: &str) -> (Value, Option<String>) {
    let response = app.get(key, &format!("/v1/receipts{query}")).await;
    assert_eq!(response.status(), 200, "{query}");
    assert_eq!(
        response.headers()["content-type"],
        "application/json",
        "{query}"
    );
    let link = response
        .headers()
        .get("link")
        .map(|v| v.to_str().expect("ascii").to_owned());
    (response.json().await.expect("json"), link)
}

fn ids(page: &Value) -> Vec<String> {
    page["receipts"]
        .as_array()
        .expect("receipts")
        .iter()
        .map(|r| r["id"].as_str().expect("id").to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_lists_the_callers_receipts_newest_first_with_summaries() {
    let app = TestApp::spawn().await;
    let mine = seed(&app, &acme(), 5, |i| i == 1).await;
    seed(&app, &TenantId::parse("other").expect("tenant"), 3, |_| {
        false
    })
    .await;

    let (body, link) = page(&app, &app.reader, "").await;
    let expected: Vec<String> = mine.iter().rev().map(|r| r.id.to_string()).collect();
    assert_eq!(ids(&body), expected, "acme's only, newest first");
    assert_eq!(body["next_cursor"], Value::Null);
    assert_eq!(link, None, "no next page");
    let first = &body["receipts"][3];
    assert_eq!(first["status"], "REJECTED");
    assert_eq!(first["receipt_type"], "retail-receipt/v1");
    assert_eq!(
        first["status_url"],
        app.url(&format!("/v1/receipts/{}", mine[1].id))
    );
    assert!(first["received_at"].as_str().is_some() && first["updated_at"].as_str().is_some());

    let (other, _) = page(&app, &app.other, "").await;
    assert_eq!(ids(&other).len(), 3, "other tenant sees its own");
    assert!(ids(&other).iter().all(|id| !expected.contains(id)));

    let (oldest_first, _) = page(&app, &app.reader, "?order=asc").await;
    let ascending: Vec<String> = mine.iter().map(|r| r.id.to_string()).collect();
    assert_eq!(ids(&oldest_first), ascending);

    let (rejected, _) = page(&app, &app.reader, "?status=REJECTED").await;
    assert_eq!(ids(&rejected), [mine[1].id.to_string()]);
    let (both, _) = page(&app, &app.reader, "?status=REJECTED,RECEIVED").await;
    assert_eq!(ids(&both).len(), 5);
    let (none, _) = page(&app, &app.reader, "?type=fuel-receipt/v1").await;
    assert_eq!(ids(&none), Vec::<String>::new());
    let (past, _) = page(
        &app,
        &app.reader,
        "?from=2020-01-01T00:00:00Z&to=2020-02-01T00:00:00Z",
    )
    .await;
    assert_eq!(ids(&past), Vec::<String>::new(), "outside the interval");
}

/// Walks every page with a small limit while receipts keep arriving: each receipt that existed
/// at the first page is seen exactly once, and no receipt twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cursor_walk_sees_every_receipt_once_while_receipts_arrive() {
    let app = TestApp::spawn().await;
    let existing = seed(&app, &acme(), 95, |i| i % 7 == 0).await;
    let mut seen = Vec::new();
    let mut query = "?limit=10".to_owned();
    let mut pages = 0;
    loop {
        let (body, link) = page(&app, &app.reader, &query).await;
        pages += 1;
        let page_ids = ids(&body);
        assert!(page_ids.len() <= 10);
        seen.extend(page_ids);
        // New receipts arrive between pages.
        seed(&app, &acme(), 3, |_| false).await;
        match body["next_cursor"].as_str() {
            Some(cursor) => {
                let link = link.expect("a Link header with the next page");
                assert_eq!(
                    link,
                    format!(
                        "<{}/v1/receipts?cursor={cursor}&limit=10>; rel=\"next\"",
                        app.base
                    )
                );
                query = format!("?cursor={cursor}&limit=10");
            }
            None => {
                assert_eq!(link, None);
                break;
            }
        }
        assert!(pages < 50, "the walk ends");
    }
    let distinct: HashSet<&String> = seen.iter().collect();
    assert_eq!(distinct.len(), seen.len(), "no receipt twice");
    for record in &existing {
        assert!(
            distinct.contains(&record.id.to_string()),
            "{} was skipped",
            record.id
        );
    }
    assert_eq!(pages, 10, "95 receipts, 10 a page");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_holds_up_to_10000_receipts_and_ndjson_streams_them() {
    let app = TestApp::spawn().await;
    let records = seed(&app, &acme(), 10_001, |i| i % 2 == 0).await;

    let (body, link) = page(&app, &app.reader, "?limit=10000").await;
    let listed = ids(&body);
    assert_eq!(listed.len(), 10_000);
    assert_eq!(listed[0], records[10_000].id.to_string(), "newest first");
    let cursor = body["next_cursor"]
        .as_str()
        .expect("one more page")
        .to_owned();
    assert!(link.is_some());
    let (rest, _) = page(&app, &app.reader, &format!("?cursor={cursor}&limit=10000")).await;
    assert_eq!(ids(&rest), [records[0].id.to_string()]);

    let response = app
        .http
        .get(app.url("/v1/receipts?limit=10000&status=REJECTED"))
        .bearer_auth(&app.reader)
        .header("accept", "application/x-ndjson")
        .send()
        .await
        .expect("list");
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/x-ndjson");
    assert_eq!(response.headers().get("link"), None, "5,001 fit one page");
    let text = response.text().await.expect("body");
    let lines: Vec<Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).expect("one JSON receipt per line"))
        .collect();
    assert_eq!(lines.len(), 5_001);
    assert!(
        lines
            .iter()
            .all(|r| r["status"] == Status::Rejected.as_str())
    );
    assert!(text.ends_with('\n'));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_list_queries_are_precise_problems() {
    let app = TestApp::spawn().await;
    seed(&app, &acme(), 3, |_| false).await;
    for (query, parameter) in [
        ("?from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z", "from"),
        ("?from=2000-01-01T00:00:00Z&to=2025-01-01T00:00:00Z", "from"),
        ("?limit=0", "limit"),
        ("?limit=10001", "limit"),
        ("?limit=ten", "limit"),
        ("?status=DONE", "status"),
        ("?order=sideways", "order"),
        ("?from=last-week", "from"),
        ("?colour=red", "colour"),
        ("?limit=1&limit=2", "limit"),
    ] {
        let problem = assert_problem(
            app.get(&app.reader, &format!("/v1/receipts{query}")).await,
            400,
            "invalid-query-parameter",
        )
        .await;
        assert_eq!(problem["parameter"], parameter, "{query}");
    }

    let (body, _) = page(&app, &app.reader, "?limit=1&status=RECEIVED").await;
    let cursor = body["next_cursor"].as_str().expect("cursor").to_owned();
    // Another tenant's use of the cursor is refused, never read.
    assert_problem(
        app.get(&app.other, &format!("/v1/receipts?cursor={cursor}"))
            .await,
        400,
        "invalid-cursor",
    )
    .await;
    // Other filters than the cursor's query.
    let problem = assert_problem(
        app.get(
            &app.reader,
            &format!("/v1/receipts?cursor={cursor}&status=REJECTED"),
        )
        .await,
        400,
        "cursor-query-mismatch",
    )
    .await;
    assert_eq!(problem["parameter"], "status");
    // Tampered with, or not a cursor at all.
    let mut tampered = cursor.clone().into_bytes();
    tampered[5] = if tampered[5] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).expect("ascii");
    for bad in [tampered.as_str(), "garbage", "a.b"] {
        assert_problem(
            app.get(&app.reader, &format!("/v1/receipts?cursor={bad}"))
                .await,
            400,
            "invalid-cursor",
        )
        .await;
    }
    // The same cursor with the same filters repeated is fine.
    let (next, _) = page(
        &app,
        &app.reader,
        &format!("?cursor={cursor}&status=RECEIVED&limit=1"),
    )
    .await;
    assert_eq!(ids(&next).len(), 1);
    // Without a key: 401.
    let response = app
        .http
        .get(app.url("/v1/receipts"))
        .send()
        .await
        .expect("list");
    assert_problem(response, 401, "unauthenticated").await;
}
