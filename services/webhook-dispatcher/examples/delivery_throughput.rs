//! Webhook deliveries per second to a local always-200 receiver, signing on: a bounded
//! measurement (see load-tests/README.md), never a test.
//!
//! Publishes `--receipts` terminal status changes for one tenant with `--endpoints` registered
//! endpoints (all on one receiver on 127.0.0.1), then starts the dispatcher and times it from
//! start until every delivery is confirmed in the delivery log. The broker (tansu, SQLite engine)
//! and schema registry run in this process, as in the integration tests.
//!
//! ```sh
//! cargo run --release -p webhook-dispatcher --example delivery_throughput -- --receipts 1000 --endpoints 4
//! ```

use std::collections::HashSet;
use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use clap::Parser;
use receipts_core::Webhooks;
use receipts_domain::event::now_millis;
use receipts_domain::{
    DeliveryStatus, EndpointId, EventMeta, NewEndpoint, ReceiptEvent, ReceiptId, Status,
    StatusChanged, TenantId, Topic, WebhookSecret,
};
use receipts_kafka::{TopicNames, TopicSpec, ensure_topics};
use receipts_store::{SqliteOptions, SqliteStore, StoreConfig, Stores};
use receipts_testkit::TestEnv;
use receipts_testkit::receiver::Receiver;
use receipts_webhooks::WebhookConfig;
use tokio_util::sync::CancellationToken;
use webhook_dispatcher::DispatcherConfig;

#[derive(Debug, Parser)]
struct Args {
    /// Status changes (each is one message per endpoint).
    #[arg(long, default_value_t = 1000)]
    receipts: usize,
    /// Endpoints of the tenant, all subscribed to terminal changes.
    #[arg(long, default_value_t = 4)]
    endpoints: usize,
    /// Per-destination rate limit (requests started per second); the default config says 50.
    #[arg(long, default_value_t = 10_000)]
    rate_per_second: u32,
    /// Per-destination concurrency cap.
    #[arg(long, default_value_t = 8)]
    concurrency: u32,
    /// Give up after this long.
    #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
    timeout: Duration,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let tenant = TenantId::parse("load")?;
    let env = TestEnv::new();
    let db = env.dir.path().join("receipts.db");
    let stores = Stores::of(SqliteStore::open(&db, &SqliteOptions::default()).await?);
    let store = Webhooks::new(stores.endpoints.clone(), stores.deliveries.clone());
    let receiver = Receiver::ok().await;

    for _ in 0..args.endpoints {
        store
            .create_endpoint(
                NewEndpoint {
                    id: EndpointId::new(),
                    tenant_id: tenant.clone(),
                    url: receiver.url("/hooks"),
                    description: None,
                    events: None,
                    secret: WebhookSecret::generate(),
                },
                now_millis(),
            )
            .await?;
    }

    // The status-change topic must exist before the changes are published.
    let status_changed = TopicNames::new(&env.kafka).of(&Topic::StatusChanged);
    ensure_topics(&env.kafka, &[TopicSpec::new(&env.kafka, status_changed)]).await?;
    let producer = env.producer();
    let mut receipts = Vec::with_capacity(args.receipts);
    for _ in 0..args.receipts {
        let change = StatusChanged {
            meta: EventMeta::new(ReceiptId::new(), tenant.clone()),
            from: Status::Validated,
            to: Status::Accepted,
            receipt_type: "retail-receipt/v1".into(),
            callback_url: None,
            reasons: vec![],
            registrations: vec![],
            failures: vec![],
        };
        receipts.push(change.meta.receipt_id);
        producer
            .publish(&ReceiptEvent::StatusChanged(change))
            .await?;
    }
    let expected = args.receipts * args.endpoints;
    println!(
        "published {} status changes for {} endpoints: {expected} deliveries to make",
        args.receipts, args.endpoints
    );

    let mut webhooks = WebhookConfig {
        allow_private: vec!["127.0.0.0/8".parse()?],
        ..WebhookConfig::default()
    };
    webhooks.per_destination.rate_per_second =
        NonZeroU32::new(args.rate_per_second).context("--rate-per-second must be positive")?;
    webhooks.per_destination.concurrency =
        NonZeroU32::new(args.concurrency).context("--concurrency must be positive")?;
    let config = DispatcherConfig {
        kafka: env.kafka.clone(),
        schema_registry: env.schema_registry.clone(),
        store: StoreConfig::sqlite(&db),
        webhooks,
        ..DispatcherConfig::default()
    };
    let shutdown = CancellationToken::new();
    let started = Instant::now();
    let dispatcher = tokio::spawn(webhook_dispatcher::run(config, stores, shutdown.clone()));

    let mut first_request = None;
    while receiver.count() < expected {
        ensure!(
            started.elapsed() < args.timeout,
            "only {} of {expected} deliveries after {:?}",
            receiver.count(),
            args.timeout
        );
        if first_request.is_none() && receiver.count() > 0 {
            first_request = Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let received = started.elapsed();
    // Confirmed means logged as delivered, not merely received.
    for receipt in &receipts {
        loop {
            let deliveries = store.deliveries(&tenant, *receipt).await?;
            let delivered = deliveries
                .iter()
                .filter(|d| d.delivery.status == DeliveryStatus::Delivered)
                .count();
            if delivered == args.endpoints {
                break;
            }
            ensure!(
                started.elapsed() < args.timeout,
                "receipt {receipt}: {delivered} of {} deliveries confirmed",
                args.endpoints
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let confirmed = started.elapsed();
    shutdown.cancel();
    dispatcher.await??;

    let requests = receiver.requests();
    let ids: HashSet<String> = requests.iter().map(|r| r.webhook_id()).collect();
    let signed = requests
        .iter()
        .filter(|r| r.header("webhook-signature").starts_with("v1,"))
        .count();
    println!(
        "first request after {:.2} s (consumer group join and fetch)",
        first_request.unwrap_or(received).as_secs_f64()
    );
    println!(
        "{} requests ({} distinct webhook-ids, {signed} signed) in {:.2} s; all confirmed in the log after {:.2} s",
        requests.len(),
        ids.len(),
        received.as_secs_f64(),
        confirmed.as_secs_f64()
    );
    println!(
        "deliveries/s: {:.0} (from start to every delivery confirmed), {:.0} (from the first request)",
        expected as f64 / confirmed.as_secs_f64(),
        expected as f64 / (confirmed - first_request.unwrap_or_default()).as_secs_f64()
    );
    Ok(())
}
