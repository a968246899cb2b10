//! `mock-registries [--config FILE]`: the tax and the logistics mock in one process, until
//! SIGINT/SIGTERM. Configuration: defaults, then the TOML file, then `RECEIPTS_*` variables
//! (`RECEIPTS_TAX__LISTEN`, `RECEIPTS_LOGISTICS__FAULTS__OUTAGE`, `RECEIPTS_TELEMETRY__LOG_FORMAT`).
#![forbid(unsafe_code)]

use anyhow::{anyhow, bail};
use clap::Parser;
use mock_registries::{MockConfig, MocksConfig, RegistryKind, SERVICE};
use receipts_runtime::{ServiceArgs, TelemetryConfig, load_config, shutdown_on_signal, telemetry};
use serde::{Deserialize, Serialize};

/// The binary's configuration: [`MocksConfig`]'s two sections plus telemetry (kept out of
/// `MocksConfig` so that an embedding process configures telemetry once, its own way).
#[derive(Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Config {
    tax: MockConfig,
    logistics: MockConfig,
    telemetry: TelemetryConfig,
}

impl Default for Config {
    fn default() -> Self {
        let MocksConfig { tax, logistics } = MocksConfig::default();
        Self {
            tax,
            logistics,
            telemetry: TelemetryConfig::default(),
        }
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    receipts_runtime::exit_code(run().await)
}

async fn run() -> anyhow::Result<()> {
    let args = ServiceArgs::parse();
    let config: Config = load_config(args.config.as_deref())?;
    let telemetry = telemetry::init(SERVICE, &config.telemetry)?;
    let result = serve_both(config.tax, config.logistics).await;
    telemetry.shutdown();
    result
}

async fn serve_both(tax: MockConfig, logistics: MockConfig) -> anyhow::Result<()> {
    for (section, config, kind) in [
        ("tax", &tax, RegistryKind::Tax),
        ("logistics", &logistics, RegistryKind::Logistics),
    ] {
        if config.kind != kind {
            bail!("invalid configuration: {section}.kind must be \"{kind}\"");
        }
    }
    let tax_listener = mock_registries::bind(tax.listen).await?;
    let logistics_listener = mock_registries::bind(logistics.listen).await?;
    let shutdown = shutdown_on_signal();
    // If one mock cannot start, stop the other instead of running half the pair.
    let serve = |config: MockConfig, listener| {
        let shutdown = shutdown.clone();
        async move {
            let kind = config.kind;
            let result = mock_registries::serve(config, listener, shutdown.clone()).await;
            if result.is_err() {
                shutdown.cancel();
            }
            // `exit_code` prints only the error's own message: keep the cause in it.
            result.map_err(|error| anyhow!("{kind} mock registry: {error}"))
        }
    };
    let (tax, logistics) = tokio::join!(
        serve(tax, tax_listener),
        serve(logistics, logistics_listener)
    );
    tax.and(logistics)
}
