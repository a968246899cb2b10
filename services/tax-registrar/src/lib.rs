//! tax-registrar: the generic registrar configured for the tax authority. Everything it does is
//! in `receipts-registrar`; this crate only supplies the defaults.
#![forbid(unsafe_code)]

use receipts_registrar::RegistrarConfig;
use receipts_registries::RegistryConfig;
use serde::{Deserialize, Serialize};

/// The registrar's configuration with the tax authority as its default registry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TaxRegistrarConfig(pub RegistrarConfig);

impl Default for TaxRegistrarConfig {
    fn default() -> Self {
        Self(RegistrarConfig::new(RegistryConfig::tax_default()))
    }
}
