//! logistics-registrar: the generic registrar configured for the logistics provider. Everything
//! it does is in `receipts-registrar`; this crate only supplies the defaults.
#![forbid(unsafe_code)]

use receipts_registrar::RegistrarConfig;
use receipts_registries::RegistryConfig;
use serde::{Deserialize, Serialize};

/// The registrar's configuration with the logistics provider as its default registry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct LogisticsRegistrarConfig(pub RegistrarConfig);

impl Default for LogisticsRegistrarConfig {
    fn default() -> Self {
        Self(RegistrarConfig::new(RegistryConfig::logistics_default()))
    }
}
