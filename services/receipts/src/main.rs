//! `receipts`: run the whole platform on one machine, and manage it.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use receipts::clients;
use receipts::{Platform, PlatformConfig};
use receipts_domain::{ReceiptType, TenantId};
use receipts_runtime::{load_config, shutdown_on_signal, telemetry};
use receipts_store::{ClientId, ClientStore, Scope, SqliteStore};

#[derive(Debug, Parser)]
#[command(
    name = "receipts",
    version,
    about = "The receipts platform: run it, manage it."
)]
struct Cli {
    /// A TOML configuration file (also `RECEIPTS_CONFIG`); `RECEIPTS_*` variables override it.
    #[arg(long, global = true, env = "RECEIPTS_CONFIG")]
    config: Option<PathBuf>,
    /// Keep every file (broker log, store, registry, dev key) under this directory.
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start everything in this process: broker, schema registry, store and all services.
    Up,
    /// Manage API clients.
    #[command(subcommand)]
    Clients(ClientsCommand),
    /// Print one fresh receipt document of a built-in type to stdout.
    Sample {
        /// The receipt type, e.g. retail-receipt/v1 or retail-receipt-xml/v1.
        #[arg(long = "type")]
        receipt_type: String,
        /// Make it invalid (at least two distinct errors).
        #[arg(long)]
        invalid: bool,
        /// Reproduce a particular document (default: a random one).
        #[arg(long)]
        seed: Option<u64>,
    },
}

#[derive(Debug, Subcommand)]
enum ClientsCommand {
    /// Create a client and print its API key (shown only once).
    Create {
        #[arg(long)]
        tenant: String,
        #[arg(long, value_parser = ["read", "read-write"])]
        scope: String,
        #[arg(long)]
        label: Option<String>,
    },
    /// List clients (never their keys).
    List {
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Revoke a client: its key stops working immediately.
    Revoke { id: ClientId },
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    receipts_runtime::exit_code(run(Cli::parse()).await)
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let mut config: PlatformConfig = load_config(cli.config.as_deref())?;
    if let Some(dir) = &cli.data_dir {
        config = config.with_data_dir(dir);
    }
    match cli.command {
        Command::Up => up(config).await,
        Command::Clients(command) => clients_command(config, command).await,
        Command::Sample {
            receipt_type,
            invalid,
            seed,
        } => sample(&receipt_type, invalid, seed),
    }
}

async fn up(config: PlatformConfig) -> anyhow::Result<()> {
    let telemetry = telemetry::init("receipts", &config.telemetry)?;
    let key_file = config.embedded.dev_api_key_file.clone();
    let registry = config.schema_registry.url.clone();
    let kafka = config.kafka.bootstrap_servers.clone();
    let platform = Platform::start(config).await?;
    let gateway = format!("http://{}", platform.gateway_addr);
    println!("receipts is up");
    println!("  HTTP API         {gateway}");
    println!("  Kafka            {kafka}");
    println!("  Schema Registry  {registry}");
    match &platform.new_dev_key {
        Some(key) => println!(
            "  dev API key      {key}  (tenant dev, read-write; saved to {})",
            key_file.display()
        ),
        None => println!("  dev API key      in {}", key_file.display()),
    }
    println!(
        "Try: curl -H \"Authorization: Bearer $(cat {})\" {gateway}/v1/receipts/<id>",
        key_file.display()
    );
    println!("Ctrl-C stops everything cleanly.");
    let result = platform.run_until(shutdown_on_signal()).await;
    telemetry.shutdown();
    Ok(result?)
}

fn sample(receipt_type: &str, invalid: bool, seed: Option<u64>) -> anyhow::Result<()> {
    use std::io::Write;
    let receipt_type = ReceiptType::lookup(receipt_type)?;
    let seed = seed.unwrap_or_else(rand::random);
    let document = receipts_validation::sample::generate(&receipt_type, !invalid, seed);
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(&document)?;
    stdout.write_all(b"\n")?;
    Ok(())
}

async fn clients_command(config: PlatformConfig, command: ClientsCommand) -> anyhow::Result<()> {
    let store = SqliteStore::open(&config.store).await?;
    match command {
        ClientsCommand::Create {
            tenant,
            scope,
            label,
        } => {
            let tenant = TenantId::parse(&tenant)?;
            let scope: Scope = scope.parse().map_err(anyhow::Error::msg)?;
            let created = clients::create(&store, tenant, scope, label).await?;
            println!("client  {}", created.client.id);
            println!("tenant  {}", created.client.tenant_id);
            println!("scope   {}", created.client.scope);
            println!("key     {}", created.key.expose());
            eprintln!("Store the key now: it is not shown again.");
        }
        ClientsCommand::List { tenant } => {
            let tenant = tenant.as_deref().map(TenantId::parse).transpose()?;
            println!(
                "{:<36}  {:<16}  {:<10}  {:<10}  {:<7}  label",
                "id", "tenant", "scope", "key", "status"
            );
            for c in store.list_clients(tenant.as_ref()).await? {
                let status = if c.is_active() { "active" } else { "revoked" };
                let label = c.label.as_deref().unwrap_or("");
                println!(
                    "{:<36}  {:<16}  {:<10}  {:<10}  {:<7}  {label}",
                    c.id, c.tenant_id, c.scope, c.key_prefix, status
                );
            }
        }
        ClientsCommand::Revoke { id } => {
            if store.revoke_client(id).await? {
                println!("revoked {id}");
            } else {
                anyhow::bail!("no active client {id}");
            }
        }
    }
    Ok(())
}
