use std::sync::Arc;

use clap::Parser;
use ingest_gateway::{GatewayConfig, SERVICE, Stores};
use receipts_runtime::{ServiceArgs, load_config, shutdown_on_signal, telemetry};
use receipts_store::SqliteStore;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    receipts_runtime::exit_code(run().await)
}

async fn run() -> anyhow::Result<()> {
    let args = ServiceArgs::parse();
    let config: GatewayConfig = load_config(args.config.as_deref())?;
    let telemetry = telemetry::init(SERVICE, &config.telemetry)?;
    let store = Arc::new(SqliteStore::open(&config.store, config.status.clone()).await?);
    let listener = tokio::net::TcpListener::bind(config.gateway.listen).await?;
    let result =
        ingest_gateway::run(config, Stores::all(store), listener, shutdown_on_signal()).await;
    telemetry.shutdown();
    Ok(result?)
}
