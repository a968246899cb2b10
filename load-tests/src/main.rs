//! `load-tests`: runs a named scenario against a running platform (`receipts up`), shows a live
//! progress line, prints the figures and writes them as JSON under `load-tests/results/`.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use load_tests::generator::{self, Options};
use load_tests::provision;
use load_tests::receiver::Receiver;
use load_tests::schedule::Schedule;
use receipts_store::{StoreConfig, Stores};
use url::Url;

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Scenario {
    /// A few seconds at a low rate: does everything work?
    Smoke,
    /// `--rate` receipts a second for `--duration`.
    Steady,
    /// The specified peak: 1,000 receipts a second for 10 minutes.
    Peak,
    /// From `--from` to `--rate` receipts a second, linearly, over `--duration`.
    Ramp,
}

#[derive(Debug, Parser)]
#[command(
    name = "load-tests",
    about = "Open-loop load against a running receipts platform",
    after_help = "Examples:\n  load-tests smoke\n  load-tests steady --rate 200 --duration 60s\n  load-tests ramp --from 50 --rate 1000 --duration 5m\n  load-tests peak"
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
    let minute = Duration::from_secs(60);
    let schedule = match cli.scenario {
        Scenario::Smoke => Schedule::steady(
            cli.rate.unwrap_or(20.0),
            cli.duration.unwrap_or(Duration::from_secs(5)),
        ),
        Scenario::Steady => {
            Schedule::steady(cli.rate.unwrap_or(100.0), cli.duration.unwrap_or(minute))
        }
        Scenario::Peak => Schedule::steady(
            cli.rate.unwrap_or(1_000.0),
            cli.duration.unwrap_or(10 * minute),
        ),
        Scenario::Ramp => Schedule {
            from: cli.from,
            to: cli.rate.unwrap_or(1_000.0),
            over: cli.duration.unwrap_or(5 * minute),
        },
    };
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
    let scenario = format!("{:?}", cli.scenario).to_lowercase();
    let metrics_url = cli.metrics.map_or_else(|| cli.url.join("metrics"), Ok)?;
    let summary = generator::run(
        Options {
            scenario: scenario.clone(),
            base: cli.url,
            schedule,
            max: cli.max,
            drain: cli.drain,
            mocks,
            seed,
            progress: !cli.quiet,
            platform_pid: cli.pid,
            metrics_url: Some(metrics_url),
        },
        tenants,
        &receiver,
        heard,
    )
    .await?;
    println!("{}", summary.render());
    std::fs::create_dir_all(&cli.out)?;
    let file = cli.out.join(format!(
        "{scenario}-{}.json",
        chrono::Utc::now().format("%Y%m%dT%H%M%SZ")
    ));
    std::fs::write(&file, serde_json::to_vec_pretty(&summary)?)?;
    println!("summary: {}", file.display());
    let report = load_tests::report::write(&summary, &file)?;
    println!("report: {}", report.display());
    Ok(summary.verification.passed())
}

/// A seed that differs from run to run (documents and idempotency keys are unique per run).
fn rand_seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or_default()
}
