use clap::Parser;
use receipts_runtime::{ServiceArgs, load_config, shutdown_on_signal, telemetry};
use validator::{SERVICE, ValidatorConfig};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    receipts_runtime::exit_code(run().await)
}

async fn run() -> anyhow::Result<()> {
    let args = ServiceArgs::parse();
    let config: ValidatorConfig = load_config(args.config.as_deref())?;
    let telemetry = telemetry::init(SERVICE, &config.telemetry)?;
    let result = validator::run(config, shutdown_on_signal()).await;
    telemetry.shutdown();
    Ok(result?)
}
