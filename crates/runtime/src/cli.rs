//! The command line every service binary shares.

use std::path::PathBuf;

/// Runs one service; configuration comes from the defaults, the file and `RECEIPTS_*` variables.
#[derive(Debug, clap::Parser)]
pub struct ServiceArgs {
    /// A TOML configuration file (also `RECEIPTS_CONFIG`).
    #[arg(long, env = "RECEIPTS_CONFIG")]
    pub config: Option<PathBuf>,
}

/// The process exit code for a binary's result; an error is printed once, readably, never as a
/// debug dump. (The project's error messages already include their causes.)
pub fn exit_code<E: std::fmt::Display>(result: Result<(), E>) -> std::process::ExitCode {
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}
