//! The command line every service binary shares.

use std::path::PathBuf;

/// Runs one service; configuration comes from the defaults, the file and `RECEIPTS_*` variables.
#[derive(Debug, clap::Parser)]
pub struct ServiceArgs {
    /// A TOML configuration file (also `RECEIPTS_CONFIG`).
    #[arg(long, env = "RECEIPTS_CONFIG")]
    pub config: Option<PathBuf>,
}
