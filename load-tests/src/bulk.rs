//! The `batch` scenario: the same number of receipts sent as single submissions and as NDJSON
//! batches, each as fast as the gateway acknowledges them (closed loop, a fixed number of
//! requests in flight), compared in acknowledged receipts per second.

use std::time::{Duration, Instant};

use futures::StreamExt;
use receipts_domain::DocumentFormat;
use receipts_validation::types::TypeSet;
use serde_json::json;
use url::Url;

/// What one comparison measured.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Figures {
    pub receipts: usize,
    pub batch_size: usize,
    pub concurrency: usize,
    pub single_accepted: usize,
    pub single_per_s: f64,
    pub batch_accepted: usize,
    pub batch_per_s: f64,
}

/// One receipt of the run: its type, media type, key and document.
struct Item {
    receipt_type: String,
    content_type: &'static str,
    key: String,
    document: Vec<u8>,
}

fn items(types: &TypeSet, count: usize, seed: u64, run: &str) -> anyhow::Result<Vec<Item>> {
    let kinds = types.submission_kinds();
    anyhow::ensure!(!kinds.is_empty(), "no receipt type to send");
    (0..count)
        .map(|n| {
            let (receipt_type, format) = &kinds[n % kinds.len()];
            let seed = seed.wrapping_add(n as u64);
            let document = types
                .sample(receipt_type, *format, true, seed)
                .ok_or_else(|| anyhow::anyhow!("{receipt_type} has no {format} sample"))?;
            Ok(Item {
                receipt_type: receipt_type.clone(),
                content_type: match format {
                    DocumentFormat::Json => "application/json",
                    DocumentFormat::Xml => "application/xml",
                },
                key: format!("bulk-{run}-{seed}"),
                document,
            })
        })
        .collect()
}

/// How to compare.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Receipts sent each way.
    pub count: usize,
    pub batch_size: usize,
    /// Requests in flight.
    pub concurrency: usize,
    /// Between the two runs, for the pipeline to catch up.
    pub pause: Duration,
    /// Makes documents and keys unique to the run.
    pub seed: u64,
}

/// Sends `count` receipts one request each, then (after `pause`) `count` others in batches of
/// `batch_size`; `concurrency` requests in flight either way.
pub async fn compare(
    http: &reqwest::Client,
    base: &Url,
    key: &str,
    types: &TypeSet,
    plan: &Plan,
) -> anyhow::Result<Figures> {
    let Plan {
        count,
        batch_size,
        concurrency,
        pause,
        seed,
    } = plan.clone();
    let single = items(types, count, seed, "single")?;
    let batched = items(types, count, seed, "batch")?;
    let url = base.join("v1/receipts")?;
    let started = Instant::now();
    let single_accepted = futures::stream::iter(single)
        .map(|item| {
            let request = http
                .post(url.clone())
                .bearer_auth(key)
                .header("Content-Type", item.content_type)
                .header("Receipt-Type", item.receipt_type)
                .header("Idempotency-Key", item.key)
                .body(item.document);
            async move {
                request
                    .send()
                    .await
                    .is_ok_and(|r| r.status().as_u16() == 202)
            }
        })
        .buffer_unordered(concurrency)
        .filter(|accepted| std::future::ready(*accepted))
        .count()
        .await;
    let single_secs = started.elapsed().as_secs_f64();
    tokio::time::sleep(pause).await;

    let url = base.join("v1/receipts/batch")?;
    let bodies: Vec<String> = batched
        .chunks(batch_size.max(1))
        .map(|chunk| {
            chunk
                .iter()
                .map(|item| {
                    json!({
                        "receipt_type": item.receipt_type,
                        "content_type": item.content_type,
                        "idempotency_key": item.key,
                        "document": String::from_utf8_lossy(&item.document),
                    })
                    .to_string()
                })
                .collect::<Vec<_>>()
                .join("\n")
        })
        .collect();
    let started = Instant::now();
    let batch_accepted: usize = futures::stream::iter(bodies)
        .map(|body| {
            let request = http
                .post(url.clone())
                .bearer_auth(key)
                .header("Content-Type", "application/x-ndjson")
                .body(body);
            async move {
                let Ok(response) = request.send().await else {
                    return 0;
                };
                let outcome: serde_json::Value = response.json().await.unwrap_or_default();
                outcome["accepted"].as_u64().unwrap_or(0) as usize
            }
        })
        .buffer_unordered(concurrency)
        .fold(0, |total, accepted| async move { total + accepted })
        .await;
    let batch_secs = started.elapsed().as_secs_f64();
    Ok(Figures {
        receipts: count,
        batch_size,
        concurrency,
        single_accepted,
        single_per_s: single_accepted as f64 / single_secs.max(f64::MIN_POSITIVE),
        batch_accepted,
        batch_per_s: batch_accepted as f64 / batch_secs.max(f64::MIN_POSITIVE),
    })
}
