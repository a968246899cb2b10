//! `load-tests`: runs a named scenario against a running platform (`receipts up`), shows a live
//! progress line, prints the figures and writes them as JSON under `load-tests/results/`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use receipts_validation::types::TypeSet;

use clap::{Parser, ValueEnum};
use load_tests::generator::{self, Options};
use load_tests::provision::{self, Tenant};
use load_tests::receiver::Receiver;
use load_tests::schedule::Schedule;
use load_tests::summary::Summary;
use load_tests::target::{Target, highest_rate_within};
use load_tests::{baseline, scenarios};
use receipts_store::{StoreConfig, Stores};
use url::Url;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Scenario {
    /// A few seconds at a low rate: does everything work?
    Smoke,
    /// `--rate` receipts a second for `--duration`.
    Steady,
    /// The specified peak: 1,000 receipts a second for 10 minutes.
    Peak,
    /// From `--from` to `--rate` receipts a second, linearly, over `--duration`.
    Ramp,
    /// Steady load with the tax registry down from `--outage-after` for `--outage-for`: the
    /// backlog builds, then drains.
    RegistryOutage,
    /// Steady load with one tenant's second webhook endpoint hanging: the other deliveries
    /// must not slow down.
    SlowWebhooks,
    /// Steady load (1,000/s by default) while 10,000-row list pages are read back to back.
    ListWhileIngesting,
    /// The gateway against a naive produce-and-202 handler on the same broker: the ratio of
    /// their sustained 202 rates.
    Ingest,
    /// `--max` receipts as single submissions, then as many in NDJSON batches of
    /// `--batch-size`: acknowledged receipts per second of each (closed loop).
    Batch,
}

impl Scenario {
    fn name(self) -> String {
        self.to_possible_value()
            .map_or_else(|| format!("{self:?}"), |v| v.get_name().to_owned())
    }
}

#[derive(Debug, Parser)]
#[command(
    name = "load-tests",
    about = "Open-loop load against a running receipts platform",
    after_help = "Examples:\n  load-tests smoke\n  load-tests steady --rate 200 --duration 60s\n  load-tests ramp --from 50 --rate 1000 --duration 5m\n  load-tests peak\n  load-tests registry-outage --rate 100 --duration 3m\n  load-tests slow-webhooks --rate 100\n  load-tests list-while-ingesting --rate 500\n  load-tests ingest --rate 1500 --duration 30s\n  load-tests batch --max 5000 --batch-size 100 --drain 30s"
)]
struct Cli {
    scenario: Scenario,
    /// The gateway.
    #[arg(long, default_value = "http://127.0.0.1:8080/")]
    url: Url,
    /// The platform's store, where the generator creates its tenants' API keys (`receipts up`'s
    /// default data directory).
    #[arg(long, default_value = "sqlite://data/receipts.db")]
    store: String,
    /// Tenants to spread the load over (each with its key and webhook endpoint).
    #[arg(long, default_value_t = 10)]
    tenants: usize,
    /// Receipts a second (steady; the end rate of a ramp).
    #[arg(long)]
    rate: Option<f64>,
    /// The start rate of a ramp.
    #[arg(long, default_value_t = 10.0)]
    from: f64,
    /// How long to send.
    #[arg(long, value_parser = humantime::parse_duration)]
    duration: Option<Duration>,
    /// At most this many receipts.
    #[arg(long, default_value_t = 1_000_000)]
    max: u64,
    /// How long to wait for the last terminal statuses before polling for them.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    drain: Duration,
    /// A mock registry whose counts must show one registration per accepted receipt
    /// (`name=url`; repeat).
    #[arg(long = "mock", default_values_t = [
        "tax=http://127.0.0.1:8091/".to_owned(),
        "logistics=http://127.0.0.1:8092/".to_owned(),
    ])]
    mocks: Vec<String>,
    /// Items per batch (`batch`).
    #[arg(long, default_value_t = 100)]
    batch_size: usize,
    /// Requests in flight (`batch`).
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// The receipt types directory the documents are drawn from (every type and format in
    /// turn); without it, the built-in retail type.
    #[arg(long, default_value = "receipt-types")]
    receipt_types: PathBuf,
    /// Where the JSON summary goes.
    #[arg(long, default_value = "load-tests/results")]
    out: PathBuf,
    /// No progress line (logs, CI).
    #[arg(long)]
    quiet: bool,
    /// The platform's process id: its CPU and memory are sampled every second (Linux /proc),
    /// e.g. `--pid $(pgrep -f 'receipts.* up')`.
    #[arg(long)]
    pid: Option<u32>,
    /// The platform's Prometheus metrics, whose consumer lag is sampled every second (default:
    /// `<url>/metrics`).
    #[arg(long)]
    metrics: Option<Url>,
    /// registry-outage: when the tax registry goes down, from the start.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    outage_after: Duration,
    /// registry-outage: how long it stays down.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    outage_for: Duration,
    /// list-while-ingesting: rows per list page.
    #[arg(long, default_value_t = 10_000)]
    page: u32,
    /// The 202's p99 target: the ramp reports the highest rate whose p99s stayed within both
    /// targets (every scenario reports it, as `within_target`).
    #[arg(long, default_value = "25ms", value_parser = humantime::parse_duration)]
    ack_target: Duration,
    /// The submit -> terminal p99 target.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    e2e_target: Duration,
    /// Seconds in a row that must miss a target before the rate counts as beyond it.
    #[arg(long, default_value_t = 5)]
    window: usize,
    /// ingest: the broker the baseline produces to (the platform's).
    #[arg(long, default_value = "127.0.0.1:9092")]
    bootstrap: String,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run(Cli::parse()).await {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::from(2),
        Err(error) => {
            eprintln!("load-tests: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<bool> {
    let schedule = schedule(&cli);
    let mocks = cli
        .mocks
        .iter()
        .map(|m| {
            let (name, url) = m
                .split_once('=')
                .ok_or_else(|| anyhow::anyhow!("--mock {m}: expected name=url"))?;
            Ok((name.to_owned(), Url::parse(url)?))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let seed: u64 = rand_seed();
    let stores = Stores::open(&StoreConfig {
        url: cli.store.clone(),
        ..StoreConfig::default()
    })
    .await?;
    let tenants =
        provision::tenants(&stores, &format!("lt{}", seed % 100_000), cli.tenants).await?;
    let (receiver, heard) = Receiver::start().await?;
    let http = reqwest::Client::new();
    provision::endpoints(&http, &cli.url, &tenants, &receiver).await?;
    let metrics_url = cli
        .metrics
        .clone()
        .map_or_else(|| cli.url.join("metrics"), Ok)?;
    let options = Options {
        scenario: cli.scenario.name(),
        base: cli.url.clone(),
        schedule,
        max: cli.max,
        drain: cli.drain,
        mocks,
        seed,
        progress: !cli.quiet,
        platform_pid: cli.pid,
        metrics_url: Some(metrics_url),
        types: receipt_types(&cli.receipt_types),
        acknowledgements_only: false,
    };
    if cli.scenario == Scenario::Ingest {
        return ingest(&cli, options, tenants, &receiver).await;
    }
    if cli.scenario == Scenario::Batch {
        let tenant = tenants
            .first()
            .ok_or_else(|| anyhow::anyhow!("no tenant"))?;
        let count = usize::try_from(cli.max.min(100_000)).unwrap_or(100_000);
        let figures = load_tests::bulk::compare(
            &http,
            &cli.url,
            &tenant.key,
            &options.types,
            &load_tests::bulk::Plan {
                count,
                batch_size: cli.batch_size,
                concurrency: cli.concurrency,
                pause: cli.drain,
                seed,
            },
        )
        .await?;
        println!(
            "batch: {} receipts: single {:.0}/s ({} accepted), batches of {} {:.0}/s ({} accepted), {} in flight",
            figures.receipts,
            figures.single_per_s,
            figures.single_accepted,
            figures.batch_size,
            figures.batch_per_s,
            figures.batch_accepted,
            figures.concurrency
        );
        let path = cli.out.join(format!("batch-{}.json", seed % 100_000));
        std::fs::create_dir_all(&cli.out)?;
        std::fs::write(&path, serde_json::to_vec_pretty(&figures)?)?;
        return Ok(figures.single_accepted == count && figures.batch_accepted == count);
    }

    let side = Side::start(&cli, &http, &options, &tenants).await?;
    let mut summary = generator::run(options, tenants, &receiver, heard).await?;
    let side_ok = side.finish(&mut summary).await;
    let target = Target {
        ack_p99_ms: cli.ack_target.as_secs_f64() * 1_000.0,
        e2e_p99_ms: cli.e2e_target.as_secs_f64() * 1_000.0,
    };
    summary.findings.insert(
        "within_target".to_owned(),
        serde_json::to_value(highest_rate_within(&summary.seconds, target, cli.window))?,
    );
    report(&cli, &summary)?;
    Ok(side_ok && summary.verification.passed())
}

fn schedule(cli: &Cli) -> Schedule {
    let minute = Duration::from_secs(60);
    let steady = |rate: f64, duration: Duration| {
        Schedule::steady(cli.rate.unwrap_or(rate), cli.duration.unwrap_or(duration))
    };
    match cli.scenario {
        Scenario::Smoke => steady(20.0, Duration::from_secs(5)),
        Scenario::Steady | Scenario::SlowWebhooks => steady(100.0, minute),
        Scenario::Peak | Scenario::ListWhileIngesting => steady(1_000.0, 10 * minute),
        Scenario::RegistryOutage => steady(100.0, 3 * minute),
        Scenario::Ingest => steady(1_500.0, Duration::from_secs(30)),
        // Closed loop: no schedule of its own.
        Scenario::Batch => steady(0.0, Duration::ZERO),
        Scenario::Ramp => Schedule {
            from: cli.from,
            to: cli.rate.unwrap_or(1_000.0),
            over: cli.duration.unwrap_or(5 * minute),
        },
    }
}

/// What a scenario runs beside the load.
enum Side {
    Nothing,
    Outage(tokio::task::JoinHandle<anyhow::Result<scenarios::OutageReport>>),
    Hanging(scenarios::HangingEndpoint, String),
    Lister(tokio::task::JoinHandle<anyhow::Result<scenarios::ListReport>>),
}

impl Side {
    async fn start(
        cli: &Cli,
        http: &reqwest::Client,
        options: &Options,
        tenants: &[Tenant],
    ) -> anyhow::Result<Self> {
        let first = tenants
            .first()
            .ok_or_else(|| anyhow::anyhow!("--tenants must be at least 1"))?;
        Ok(match cli.scenario {
            Scenario::RegistryOutage => {
                let (name, tax) = options
                    .mocks
                    .iter()
                    .find(|(name, _)| name == "tax")
                    .or(options.mocks.first())
                    .ok_or_else(|| anyhow::anyhow!("registry-outage needs a --mock"))?;
                Self::Outage(scenarios::registry_outage(
                    http.clone(),
                    name.clone(),
                    tax.clone(),
                    cli.outage_after,
                    cli.outage_for,
                ))
            }
            Scenario::SlowWebhooks => {
                let hanging = scenarios::HangingEndpoint::start().await?;
                hanging.subscribe(http, &cli.url, first).await?;
                Self::Hanging(hanging, first.id.clone())
            }
            Scenario::ListWhileIngesting => Self::Lister(scenarios::lister(
                http.clone(),
                cli.url.clone(),
                first.clone(),
                cli.page,
                options.schedule.over,
            )),
            _ => Self::Nothing,
        })
    }

    /// Adds what it saw to `summary`'s findings; `false` when the side task failed (its error
    /// is the finding, and the run fails, but the load's figures are still reported).
    async fn finish(self, summary: &mut Summary) -> bool {
        let (name, value): (&str, anyhow::Result<serde_json::Value>) = match self {
            Self::Nothing => return true,
            Self::Outage(task) => ("outage", side_value(task).await),
            Self::Hanging(hanging, tenant) => (
                "hanging_endpoint",
                Ok(serde_json::json!({
                    "tenant": tenant,
                    "url": hanging.url,
                    "connections_opened": hanging.connections(),
                })),
            ),
            Self::Lister(task) => ("list_pages", side_value(task).await),
        };
        let ok = value.is_ok();
        let value =
            value.unwrap_or_else(|error| serde_json::json!({ "error": format!("{error:#}") }));
        summary.findings.insert(name.to_owned(), value);
        ok
    }
}

async fn side_value<T: serde::Serialize>(
    task: tokio::task::JoinHandle<anyhow::Result<T>>,
) -> anyhow::Result<serde_json::Value> {
    Ok(serde_json::to_value(task.await??)?)
}

/// The baseline, then the gateway, at the same schedule against the same broker; the gateway's
/// summary records the ratio of their sustained 202 rates.
async fn ingest(
    cli: &Cli,
    options: Options,
    tenants: Vec<Tenant>,
    receiver: &Receiver,
) -> anyhow::Result<bool> {
    let partitions = 6;
    let baseline = baseline::start(&cli.bootstrap, "load-tests.baseline", partitions).await?;
    let ack_only = |scenario: &str, base: Url, seed: u64| Options {
        scenario: scenario.to_owned(),
        base,
        seed,
        metrics_url: None,
        acknowledgements_only: true,
        drain: Duration::ZERO,
        ..options.clone()
    };
    // The baseline first: the gateway's receipts go on through the pipeline afterwards, and
    // would slow the baseline down if it ran second.
    let (_, nobody) = tokio::sync::mpsc::unbounded_channel();
    let naive = generator::run(
        ack_only(
            "ingest-baseline",
            Url::parse(&format!("http://{}/", baseline.addr))?,
            options.seed,
        ),
        tenants.clone(),
        receiver,
        nobody,
    )
    .await?;
    drop(baseline);
    report(cli, &naive)?;
    let (_, nobody) = tokio::sync::mpsc::unbounded_channel();
    let mut gateway = generator::run(
        ack_only("ingest-gateway", options.base.clone(), options.seed + 1),
        tenants,
        receiver,
        nobody,
    )
    .await?;
    let ratio = gateway.acknowledged_per_s / naive.acknowledged_per_s.max(f64::MIN_POSITIVE);
    gateway.findings.insert(
        "ingest".to_owned(),
        serde_json::json!({
            "baseline_acknowledged_per_s": naive.acknowledged_per_s,
            "baseline_202_p99_ms": naive.acknowledgement.p99_ms,
            "gateway_acknowledged_per_s": gateway.acknowledged_per_s,
            "gateway_202_p99_ms": gateway.acknowledgement.p99_ms,
            "ratio": ratio,
        }),
    );
    report(cli, &gateway)?;
    println!(
        "ingest: gateway {:.0}/s, baseline {:.0}/s: ratio {ratio:.2}",
        gateway.acknowledged_per_s, naive.acknowledged_per_s
    );
    Ok(naive.errors.is_empty() && gateway.errors.is_empty())
}

/// Prints `summary` and writes its JSON and HTML report under `--out`.
fn report(cli: &Cli, summary: &Summary) -> anyhow::Result<()> {
    println!("{}", summary.render());
    std::fs::create_dir_all(&cli.out)?;
    let file = cli.out.join(format!(
        "{}-{}.json",
        summary.scenario,
        chrono::Utc::now().format("%Y%m%dT%H%M%SZ")
    ));
    std::fs::write(&file, serde_json::to_vec_pretty(summary)?)?;
    println!("summary: {}", file.display());
    let report = load_tests::report::write(summary, &file)?;
    println!("report: {}", report.display());
    Ok(())
}

/// The types in `dir` (the platform's, by default the repository's `receipt-types/`), or the
/// built-in ones when there is no such directory.
fn receipt_types(dir: &std::path::Path) -> Arc<TypeSet> {
    if !dir.is_dir() {
        return TypeSet::builtin();
    }
    let (types, errors) = TypeSet::load(dir, None);
    for error in errors {
        eprintln!("receipt type left out: {error}");
    }
    Arc::new(types)
}

/// A seed that differs from run to run (documents and idempotency keys are unique per run).
fn rand_seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or_default()
}
