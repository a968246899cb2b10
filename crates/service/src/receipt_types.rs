//! The receipt types of a validating service: loaded at start, then reloaded whenever the
//! directory changes (polled: works the same for files edited in place, files replaced by
//! rename, and Kubernetes ConfigMap volumes, which swap a symbolic link).

use std::time::Duration;

use receipts_telemetry::metrics as metric;
use receipts_validation::types::{Catalog, ReceiptTypesConfig};
use tokio_util::sync::CancellationToken;

use crate::Error;

/// Opens the configured types and keeps them current until `shutdown`.
pub fn open(config: &ReceiptTypesConfig, shutdown: &CancellationToken) -> Result<Catalog, Error> {
    let catalog =
        Catalog::open(config).map_err(|e| Error::setup("the receipt types", e.to_string()))?;
    if config.dir.is_some() && !config.reload_interval.is_zero() {
        tokio::spawn(watch(
            catalog.clone(),
            config.reload_interval,
            shutdown.clone(),
        ));
    }
    Ok(catalog)
}

async fn watch(catalog: Catalog, interval: Duration, shutdown: CancellationToken) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = ticks.tick() => {}
        }
        // Loading reads and compiles files: off the async workers.
        let polled = catalog.clone();
        let Ok(reload) = tokio::task::spawn_blocking(move || polled.reload_if_changed()).await
        else {
            continue;
        };
        if reload.changed {
            let outcome = if reload.errors.is_empty() {
                "loaded"
            } else {
                "refused"
            };
            metrics::counter!(metric::RECEIPT_TYPES_RELOADS, "outcome" => outcome).increment(1);
        }
        let loaded = catalog.current().iter().count();
        metrics::gauge!(metric::RECEIPT_TYPES_LOADED).set(loaded as f64);
    }
}
