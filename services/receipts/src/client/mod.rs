//! The partner-facing command line: subcommands of `receipts` that talk HTTP to any gateway
//! through [`receipts_client`] (docs/cli.md). They never read the platform's configuration.
//!
//! Exit codes (also in docs/cli.md):
//!
//! | code | meaning |
//! |---|---|
//! | 0 | done (`watch`: ACCEPTED) |
//! | 1 | usage or local error (bad arguments, unreadable file, profile file) |
//! | 2 | `watch`: REJECTED; `submit`: the API refused some file; `endpoints test`: not delivered |
//! | 3 | `watch`: FAILED |
//! | 4 | `watch`: still not terminal at `--timeout` |
//! | 5 | the API answered with a 4xx problem (bad key, not found, invalid request) |
//! | 6 | the API is unavailable: a 5xx answer, or no answer at all |

mod connection;
mod endpoints;
mod output;
pub mod profile;
mod receipts;
mod submit;
pub mod types;

use std::process::ExitCode;

use clap::Subcommand;

pub use connection::ConnectionArgs;
pub use output::{Format, ListFormat};

/// Exit codes of client commands.
pub mod exit {
    pub const OK: u8 = 0;
    /// Usage or local error.
    pub const LOCAL: u8 = 1;
    /// `watch`: REJECTED; `submit`: the API refused some file.
    pub const REJECTED: u8 = 2;
    /// `endpoints test`: the endpoint did not answer 2xx.
    pub const NOT_DELIVERED: u8 = 2;
    /// `watch`: FAILED.
    pub const FAILED: u8 = 3;
    /// `watch`: not terminal in time.
    pub const TIMEOUT: u8 = 4;
    /// The API answered with a 4xx problem.
    pub const API_PROBLEM: u8 = 5;
    /// A 5xx answer or no answer.
    pub const UNAVAILABLE: u8 = 6;
}

/// The client's subcommands (flattened into `receipts`' own).
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Submit receipt documents (JSON or XML files) to the API.
    #[command(after_help = submit::EXAMPLES)]
    Submit(submit::SubmitArgs),
    /// Show a receipt: status, rejection reasons, registrations, timeline.
    #[command(after_help = receipts::GET_EXAMPLES)]
    Get(receipts::GetArgs),
    /// Write a receipt's original document, byte for byte.
    #[command(after_help = receipts::DOCUMENT_EXAMPLES)]
    Document(receipts::DocumentArgs),
    /// List your receipts from the API (newest first), following cursors with --all.
    #[command(after_help = receipts::LIST_EXAMPLES)]
    List(receipts::ListArgs),
    /// Poll a receipt until its status is terminal; the exit code tells which.
    #[command(after_help = receipts::WATCH_EXAMPLES)]
    Watch(receipts::WatchArgs),
    /// Show the webhook messages about a receipt and every delivery attempt.
    #[command(after_help = receipts::DELIVERIES_EXAMPLES)]
    Deliveries(receipts::DeliveriesArgs),
    /// Send a delivered or failed webhook message again.
    #[command(after_help = receipts::REDELIVER_EXAMPLES)]
    Redeliver(receipts::RedeliverArgs),
    /// Manage webhook endpoints.
    #[command(subcommand)]
    Endpoints(endpoints::EndpointsCommand),
    /// Manage connection profiles (API URL and key per name, in a private file).
    #[command(subcommand)]
    Profile(connection::ProfileCommand),
    /// Print a shell completion script.
    #[command(after_help = COMPLETIONS_EXAMPLES)]
    Completions { shell: clap_complete::Shell },
}

const COMPLETIONS_EXAMPLES: &str = "\
Examples:
  receipts completions bash > ~/.local/share/bash-completion/completions/receipts
  receipts completions zsh > \"${fpath[1]}/_receipts\"
  receipts completions fish > ~/.config/fish/completions/receipts.fish";

/// Runs a client command; `cli` is the whole command line's definition (for completions).
pub async fn run(command: Command, cli: fn() -> clap::Command) -> ExitCode {
    let result = match command {
        Command::Submit(args) => submit::run(args).await,
        Command::Get(args) => receipts::get(args).await,
        Command::Document(args) => receipts::document(args).await,
        Command::List(args) => receipts::list(args).await,
        Command::Watch(args) => receipts::watch(args).await,
        Command::Deliveries(args) => receipts::deliveries(args).await,
        Command::Redeliver(args) => receipts::redeliver(args).await,
        Command::Endpoints(command) => endpoints::run(command).await,
        Command::Profile(command) => connection::profile(command),
        Command::Completions { shell } => completions(shell, cli()),
    };
    finish(result)
}

fn completions(shell: clap_complete::Shell, mut cli: clap::Command) -> anyhow::Result<u8> {
    let name = cli.get_name().to_owned();
    clap_complete::generate(shell, &mut cli, name, &mut std::io::stdout());
    Ok(exit::OK)
}

/// The process's exit code for a command's result; errors are printed first.
pub fn finish(result: anyhow::Result<u8>) -> ExitCode {
    match result {
        Ok(code) => ExitCode::from(code),
        // The reader went away (`receipts list | head`): nothing more to say.
        Err(error) if is_broken_pipe(&error) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            let api = error.downcast_ref::<receipts_client::Error>();
            if api.and_then(receipts_client::Error::status) == Some(401) {
                eprintln!(
                    "hint: the API key is missing or refused: --key, RECEIPTS_KEY or `receipts profile set` (docs/cli.md)"
                );
            }
            ExitCode::from(exit_code(&error))
        }
    }
}

fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|e| {
        let io = e.downcast_ref::<std::io::Error>().map(std::io::Error::kind);
        let json = e
            .downcast_ref::<serde_json::Error>()
            .and_then(serde_json::Error::io_error_kind);
        io.or(json) == Some(std::io::ErrorKind::BrokenPipe)
    })
}

/// 5 for a 4xx problem, 6 for a 5xx or no answer, 1 for anything local.
pub fn exit_code(error: &anyhow::Error) -> u8 {
    match error.downcast_ref::<receipts_client::Error>() {
        Some(e) if e.is_unavailable() => exit::UNAVAILABLE,
        Some(receipts_client::Error::Problem(_)) => exit::API_PROBLEM,
        _ => exit::LOCAL,
    }
}

/// Prints a command-line parse error (or `--help`/`--version`) and returns its exit code: 0
/// for help and version, 1 for usage errors.
pub fn usage(error: &clap::Error) -> ExitCode {
    let _ = error.print();
    if error.use_stderr() {
        ExitCode::from(exit::LOCAL)
    } else {
        ExitCode::SUCCESS
    }
}
