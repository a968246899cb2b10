use clap::Parser;
use receipts_runtime::{ServiceArgs, load_config, shutdown_on_signal, telemetry};
use tax_registrar::TaxRegistrarConfig;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    receipts_runtime::exit_code(run().await)
}

async fn run() -> anyhow::Result<()> {
    let args = ServiceArgs::parse();
    let TaxRegistrarConfig(config) = load_config(args.config.as_deref())?;
    let telemetry = telemetry::init(&config.service(), &config.telemetry)?;
    let result = receipts_registrar::run(config, shutdown_on_signal()).await;
    telemetry.shutdown();
    Ok(result?)
}
