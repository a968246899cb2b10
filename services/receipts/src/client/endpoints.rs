//! `endpoints create|list|show|update|rotate-secret|test|delete`: the tenant's webhook endpoints.

use std::io::Write;

use clap::{Args, Subcommand};
use receipts_client::{Endpoint, EndpointPatch, EndpointTest, NewEndpoint};

use super::connection::ConnectionArgs;
use super::exit;
use super::output::{self, Format, ListFormat, Row, or_dash, time};

const EVENTS: [&str; 4] = [
    "receipt.accepted",
    "receipt.rejected",
    "receipt.failed",
    "receipt.validated",
];

#[derive(Debug, Subcommand)]
pub enum EndpointsCommand {
    /// Register an endpoint; prints its signing secret, shown only this once.
    #[command(after_help = CREATE_EXAMPLES)]
    Create {
        /// Where webhooks are POSTed: an absolute http(s) URL.
        #[arg(value_name = "ENDPOINT_URL")]
        endpoint_url: String,
        #[arg(long)]
        description: Option<String>,
        /// Only these event types (comma-separated or repeated) [default: every terminal change].
        #[arg(long = "event", value_delimiter = ',', value_parser = EVENTS, value_name = "EVENT")]
        events: Vec<String>,
        #[arg(long, short, value_enum, default_value_t = Format::Text)]
        output: Format,
        #[command(flatten)]
        connection: ConnectionArgs,
    },
    /// The tenant's endpoints, oldest first.
    #[command(
        after_help = "Examples:\n  receipts endpoints list\n  receipts endpoints list --output csv"
    )]
    List {
        #[arg(long, short, value_enum, default_value_t = ListFormat::Table)]
        output: ListFormat,
        #[command(flatten)]
        connection: ConnectionArgs,
    },
    /// One endpoint.
    #[command(
        after_help = "Examples:\n  receipts endpoints show ep_01a1ff2b-6c3d-7e80-9a1b-2c3d4e5f6a7b"
    )]
    Show {
        id: String,
        #[arg(long, short, value_enum, default_value_t = Format::Text)]
        output: Format,
        #[command(flatten)]
        connection: ConnectionArgs,
    },
    /// Change an endpoint's URL, description, events, or enable or disable it.
    #[command(after_help = UPDATE_EXAMPLES)]
    Update(UpdateArgs),
    /// Give an endpoint a new signing secret; the previous one keeps signing for a grace period.
    #[command(
        name = "rotate-secret",
        after_help = "Examples:\n  receipts endpoints rotate-secret ep_01a1ff2b-6c3d-7e80-9a1b-2c3d4e5f6a7b"
    )]
    RotateSecret {
        id: String,
        #[arg(long, short, value_enum, default_value_t = Format::Text)]
        output: Format,
        #[command(flatten)]
        connection: ConnectionArgs,
    },
    /// Send an endpoint one signed test message now; exit 0 if it answered 2xx, 2 if not.
    #[command(after_help = TEST_EXAMPLES)]
    Test {
        id: String,
        #[arg(long, short, value_enum, default_value_t = Format::Text)]
        output: Format,
        #[command(flatten)]
        connection: ConnectionArgs,
    },
    /// Delete an endpoint (its deliveries stay in the log).
    #[command(
        after_help = "Examples:\n  receipts endpoints delete ep_01a1ff2b-6c3d-7e80-9a1b-2c3d4e5f6a7b"
    )]
    Delete {
        id: String,
        #[command(flatten)]
        connection: ConnectionArgs,
    },
}

const CREATE_EXAMPLES: &str = "\
Examples:
  receipts endpoints create https://erp.example.com/hooks/receipts
  receipts endpoints create https://erp.example.com/hooks --event receipt.accepted,receipt.failed --description ERP
  receipts endpoints create https://erp.example.com/hooks --output json | jq -r .secret";

const UPDATE_EXAMPLES: &str = "\
Examples:
  receipts endpoints update ep_01a1… --disable
  receipts endpoints update ep_01a1… --enable --all-events
  receipts endpoints update ep_01a1… --endpoint-url https://erp.example.com/v2/hooks --event receipt.failed";

const TEST_EXAMPLES: &str = "\
Examples:
  receipts endpoints test ep_01a1ff2b-6c3d-7e80-9a1b-2c3d4e5f6a7b
  receipts endpoints test ep_01a1… --output json | jq .response_excerpt

The message is a `webhook.test` event signed with the endpoint's secret(s), sent once; it is
not logged as a delivery. Exit code 0: the endpoint answered 2xx; 2: it did not (the reason is
printed).";

#[derive(Debug, Args)]
pub struct UpdateArgs {
    pub id: String,
    /// A new URL for the endpoint.
    #[arg(long, value_name = "ENDPOINT_URL")]
    pub endpoint_url: Option<String>,
    #[arg(long, conflicts_with = "no_description")]
    pub description: Option<String>,
    /// Remove the description.
    #[arg(long)]
    pub no_description: bool,
    /// Only these event types from now on (comma-separated or repeated).
    #[arg(long = "event", value_delimiter = ',', value_parser = EVENTS, value_name = "EVENT", conflicts_with = "all_events")]
    pub events: Vec<String>,
    /// Every terminal status change from now on.
    #[arg(long)]
    pub all_events: bool,
    #[arg(long, conflicts_with = "disable")]
    pub enable: bool,
    #[arg(long)]
    pub disable: bool,
    #[arg(long, short, value_enum, default_value_t = Format::Text)]
    pub output: Format,
    #[command(flatten)]
    pub connection: ConnectionArgs,
}

impl UpdateArgs {
    fn patch(&self) -> EndpointPatch {
        EndpointPatch {
            url: self.endpoint_url.clone(),
            description: if self.no_description {
                Some(None)
            } else {
                self.description.clone().map(Some)
            },
            events: if self.all_events {
                Some(None)
            } else if self.events.is_empty() {
                None
            } else {
                Some(Some(self.events.clone()))
            },
            enabled: match (self.enable, self.disable) {
                (true, _) => Some(true),
                (_, true) => Some(false),
                _ => None,
            },
        }
    }
}

impl Row for Endpoint {
    const COLUMNS: &'static [&'static str] = &[
        "id",
        "url",
        "events",
        "enabled",
        "failing_since",
        "description",
    ];
    fn cells(&self) -> Vec<String> {
        vec![
            self.id.clone(),
            self.url.clone(),
            events(self),
            match (&self.enabled, &self.disabled_reason) {
                (true, _) => "yes".into(),
                (false, Some(reason)) => format!("no ({reason})"),
                (false, None) => "no".into(),
            },
            or_dash(self.failing_since.map(time).as_deref()),
            or_dash(self.description.as_deref()),
        ]
    }
}

fn events(e: &Endpoint) -> String {
    match &e.events {
        Some(events) => events.join(","),
        None => "all terminal".into(),
    }
}

/// `delivered (HTTP 200 in 12 ms)` or `not delivered: <why>`.
fn test_summary(test: &EndpointTest) -> String {
    if test.delivered {
        let status = test
            .http_status
            .map_or_else(|| "no status".to_owned(), |s| format!("HTTP {s}"));
        return format!("delivered ({status} in {} ms)", test.latency_ms);
    }
    let why = match (&test.error, test.http_status) {
        (Some(error), _) => error.clone(),
        (None, Some(status)) => format!("HTTP {status}"),
        (None, None) => "no answer".to_owned(),
    };
    format!("not delivered: {why}")
}

fn print_endpoint(out: &mut impl Write, e: &Endpoint) -> std::io::Result<()> {
    output::fields(
        out,
        &[
            ("id", e.id.clone()),
            ("url", e.url.clone()),
            ("description", or_dash(e.description.as_deref())),
            ("events", events(e)),
            ("enabled", e.enabled.to_string()),
            ("disabled reason", or_dash(e.disabled_reason.as_deref())),
            (
                "failing since",
                or_dash(e.failing_since.map(time).as_deref()),
            ),
            ("created", time(e.created_at)),
            ("updated", time(e.updated_at)),
        ],
    )
}

pub async fn run(command: EndpointsCommand) -> anyhow::Result<u8> {
    match command {
        EndpointsCommand::Create {
            endpoint_url,
            description,
            events,
            output,
            connection,
        } => {
            let created = connection
                .client()?
                .create_endpoint(&NewEndpoint {
                    url: endpoint_url,
                    description,
                    events: (!events.is_empty()).then_some(events),
                })
                .await?;
            match output {
                Format::Json => output::json(&created)?,
                Format::Text => {
                    let mut out = std::io::stdout().lock();
                    print_endpoint(&mut out, &created.endpoint)?;
                    writeln!(out, "secret           {}", created.secret.expose())?;
                    eprintln!("Store the secret now: it is shown only once (and on rotation).");
                }
            }
        }
        EndpointsCommand::List { output, connection } => {
            let endpoints = connection.client()?.endpoints().await?;
            output::list(&endpoints, output)?;
        }
        EndpointsCommand::Show {
            id,
            output,
            connection,
        } => {
            let endpoint = connection.client()?.endpoint(&id).await?;
            match output {
                Format::Json => output::json(&endpoint)?,
                Format::Text => print_endpoint(&mut std::io::stdout().lock(), &endpoint)?,
            }
        }
        EndpointsCommand::Update(args) => {
            let patch = args.patch();
            anyhow::ensure!(
                !patch.is_empty(),
                "nothing to change: give --endpoint-url, --description, --no-description, --event, --all-events, --enable or --disable"
            );
            let endpoint = args
                .connection
                .client()?
                .update_endpoint(&args.id, &patch)
                .await?;
            match args.output {
                Format::Json => output::json(&endpoint)?,
                Format::Text => print_endpoint(&mut std::io::stdout().lock(), &endpoint)?,
            }
        }
        EndpointsCommand::RotateSecret {
            id,
            output,
            connection,
        } => {
            let rotated = connection.client()?.rotate_endpoint_secret(&id).await?;
            match output {
                Format::Json => output::json(&rotated)?,
                Format::Text => {
                    output::fields(
                        &mut std::io::stdout().lock(),
                        &[
                            ("secret", rotated.secret.expose().to_owned()),
                            ("previous valid until", time(rotated.previous_valid_until)),
                        ],
                    )?;
                }
            }
        }
        EndpointsCommand::Test {
            id,
            output,
            connection,
        } => {
            let test = connection.client()?.test_endpoint(&id).await?;
            match output {
                Format::Json => output::json(&test)?,
                Format::Text => writeln!(std::io::stdout().lock(), "{}", test_summary(&test))?,
            }
            return Ok(if test.delivered {
                exit::OK
            } else {
                exit::NOT_DELIVERED
            });
        }
        EndpointsCommand::Delete { id, connection } => {
            connection.client()?.delete_endpoint(&id).await?;
            eprintln!("deleted {id}");
        }
    }
    Ok(exit::OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(extra: &[&str]) -> UpdateArgs {
        use clap::Parser;
        #[derive(Parser)]
        struct Wrapper {
            #[command(flatten)]
            args: UpdateArgs,
        }
        let mut argv = vec!["update", "ep_1"];
        argv.extend(extra);
        Wrapper::try_parse_from(argv).expect("parse").args
    }

    #[test]
    fn updates_send_only_what_is_asked() {
        assert!(args(&[]).patch().is_empty());
        let patch = args(&["--disable", "--no-description"]).patch();
        assert_eq!(patch.enabled, Some(false));
        assert_eq!(patch.description, Some(None));
        assert_eq!(patch.events, None);
        let patch = args(&["--event", "receipt.failed,receipt.accepted"]).patch();
        assert_eq!(
            patch.events,
            Some(Some(vec![
                "receipt.failed".into(),
                "receipt.accepted".into()
            ]))
        );
        assert_eq!(args(&["--all-events"]).patch().events, Some(None));
    }

    #[test]
    fn test_results_read_as_one_line() {
        let mut test = EndpointTest {
            webhook_id: "msg_test_1".into(),
            delivered: true,
            http_status: Some(200),
            latency_ms: 12,
            response_excerpt: None,
            error: None,
        };
        assert_eq!(test_summary(&test), "delivered (HTTP 200 in 12 ms)");
        test.delivered = false;
        test.http_status = Some(500);
        test.error = Some("HTTP 500".into());
        assert_eq!(test_summary(&test), "not delivered: HTTP 500");
        test.http_status = None;
        test.error = Some("refused: 127.0.0.1 is a loopback address".into());
        assert_eq!(
            test_summary(&test),
            "not delivered: refused: 127.0.0.1 is a loopback address"
        );
    }
}
