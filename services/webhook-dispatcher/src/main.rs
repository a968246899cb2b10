use std::sync::Arc;

use clap::Parser;
use receipts_domain::StatusPolicy;
use receipts_runtime::{ServiceArgs, load_config, shutdown_on_signal, telemetry};
use receipts_store::SqliteStore;
use webhook_dispatcher::{DispatcherConfig, SERVICE};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    receipts_runtime::exit_code(run().await)
}

async fn run() -> anyhow::Result<()> {
    let args = ServiceArgs::parse();
    let config: DispatcherConfig = load_config(args.config.as_deref())?;
    let telemetry = telemetry::init(SERVICE, &config.telemetry)?;
    // The dispatcher only reads and writes webhook tables; the status policy is not used.
    let store = Arc::new(SqliteStore::open(&config.store, StatusPolicy::default()).await?);
    let result = webhook_dispatcher::run(config, store, shutdown_on_signal()).await;
    telemetry.shutdown();
    Ok(result?)
}
