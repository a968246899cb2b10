//! The generator against the whole platform in this process, for a few seconds at a low rate:
//! every receipt is acknowledged, heard of through a signed webhook (or polled), accepted, and
//! registered exactly once with each registry, whatever its receipt type. Correctness only: no
//! speed is asserted.

use std::time::Duration;

use load_tests::generator::{self, Options};
use load_tests::provision;
use load_tests::receiver::Receiver;
use load_tests::schedule::Schedule;
use receipts::{Platform, PlatformConfig};
use receipts_testkit::TestEnv;
use receipts_validation::types::TypeSet;
use tokio_util::sync::CancellationToken;
use url::Url;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_run_loses_nothing_and_registers_each_receipt_once() {
    let env = TestEnv::new();
    let mut config = PlatformConfig::default().with_data_dir(env.dir.path());
    config.embedded.broker = false;
    config.embedded.schema_registry = false;
    config.kafka = env.kafka.clone();
    config.schema_registry = env.schema_registry.clone();
    config.gateway.listen = "127.0.0.1:0".parse().expect("addr");
    config.mocks.tax.listen = "127.0.0.1:0".parse().expect("addr");
    config.mocks.logistics.listen = "127.0.0.1:0".parse().expect("addr");
    // Every shipped receipt type, in every format, takes turns.
    let types_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../receipt-types");
    config.receipt_types.dir = Some(types_dir.clone());
    let (types, errors) = TypeSet::load(&types_dir, None);
    assert!(errors.is_empty(), "{errors:?}");
    let platform = Platform::start(config).await.expect("platform starts");
    let base = Url::parse(&format!("http://{}/", platform.gateway_addr)).expect("url");
    let mocks = platform
        .mocks
        .iter()
        .map(|(name, url)| (name.clone(), Url::parse(&format!("{url}/")).expect("url")))
        .collect();
    let stores = platform.stores.clone();
    let stop = CancellationToken::new();
    let running = tokio::spawn(platform.run_until(stop.clone()));

    let tenants = provision::tenants(&stores, "smoke", 3)
        .await
        .expect("tenants");
    let (receiver, heard) = Receiver::start().await.expect("receiver");
    provision::endpoints(&reqwest::Client::new(), &base, &tenants, &receiver)
        .await
        .expect("endpoints");
    let metrics = base.join("metrics").expect("url");
    let summary = generator::run(
        Options {
            scenario: "smoke".into(),
            base,
            schedule: Schedule::steady(10.0, Duration::from_secs(3)),
            max: 1_000,
            drain: Duration::from_secs(90),
            mocks,
            seed: 7,
            progress: false,
            platform_pid: Some(std::process::id()),
            metrics_url: Some(metrics),
            types: std::sync::Arc::new(types),
            acknowledgements_only: false,
        },
        tenants,
        &receiver,
        heard,
    )
    .await
    .expect("run");

    assert_eq!(summary.sent, 30, "{}", summary.render());
    assert_eq!(summary.acknowledged, summary.sent, "{}", summary.render());
    assert_eq!(
        summary.terminal.get("ACCEPTED"),
        Some(&30),
        "{}",
        summary.render()
    );
    assert_eq!(summary.end_to_end.count, 30);
    assert!(summary.verification.registrations_checked);
    assert_eq!(summary.verification.registrations_not_once.len(), 2);
    assert!(summary.verification.passed(), "{}", summary.render());
    assert!(!summary.platform.is_empty(), "the process was sampled");
    assert!(summary.platform_rss_max_mib.is_some_and(|rss| rss > 0.0));
    let report = load_tests::report::html(&summary).expect("report");
    assert!(report.contains("<svg "), "the report has charts");
    stop.cancel();
    running.await.expect("join").expect("clean shutdown");
}
