use std::sync::Arc;

use clap::Parser;
use receipts_runtime::{ServiceArgs, load_config, shutdown_on_signal, telemetry};
use receipts_store::SqliteStore;
use status_projector::{ProjectorConfig, SERVICE};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    receipts_runtime::exit_code(run().await)
}

async fn run() -> anyhow::Result<()> {
    let args = ServiceArgs::parse();
    let config: ProjectorConfig = load_config(args.config.as_deref())?;
    let telemetry = telemetry::init(SERVICE, &config.telemetry)?;
    let store = Arc::new(SqliteStore::open(&config.store, config.status.clone()).await?);
    let result = status_projector::run(config, store, shutdown_on_signal()).await;
    telemetry.shutdown();
    Ok(result?)
}
