//! `receipts`: run the whole platform on one machine, and manage it.

use std::path::PathBuf;

use clap::{CommandFactory, Parser, Subcommand};
use receipts::{Platform, PlatformConfig};
use receipts::{client, clients, list, setup};
use receipts_domain::event::now_millis;
use receipts_domain::{ClientId, DocumentFormat, Scope, TenantId};
use receipts_runtime::{load_config, shutdown_on_signal, telemetry};
use receipts_store::Stores;

#[derive(Debug, Parser)]
#[command(
    name = "receipts",
    version,
    about = "The receipts platform: run it, manage it, and use its API."
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
    /// Start everything in this process: broker, schema registry, store, mock registries and all
    /// services.
    Up,
    /// Inspect and replay dead-letter topics.
    #[command(subcommand)]
    Dlt(DltCommand),
    /// Manage API clients.
    #[command(subcommand)]
    Clients(ClientsCommand),
    /// Manage the store.
    #[command(subcommand)]
    Store(StoreCommand),
    /// Prepare a deployment (run once before the services, and after each upgrade): create every
    /// topic (with each consumer's retry and dead-letter topics), register every event schema,
    /// migrate the store. Idempotent.
    Setup,
    /// Exit 0 when URL answers with a 2xx within the timeout, 1 otherwise (container
    /// healthchecks: the image has no shell and no curl).
    Probe {
        url: url::Url,
        #[arg(long, default_value = "3s", value_parser = humantime::parse_duration)]
        timeout: std::time::Duration,
    },
    /// The receipt types the API accepts; check and list receipt type directories.
    #[command(subcommand)]
    Types(TypesCommand),
    /// Print one fresh receipt document of any loaded receipt type to stdout (the built-in retail
    /// type is generated; a configured type's comes from its examples, with a fresh receipt
    /// number).
    Sample {
        /// The receipt type, e.g. retail-receipt/v1, retail-receipt-xml/v1, restaurant-bill/v1.
        #[arg(long = "type")]
        receipt_type: String,
        /// json or xml (default: the type's first format).
        #[arg(long)]
        format: Option<String>,
        /// Make it invalid (at least two distinct errors).
        #[arg(long)]
        invalid: bool,
        /// Reproduce a particular document (default: a random one).
        #[arg(long)]
        seed: Option<u64>,
    },
    /// Submit the records of files dropped in a folder (NDJSON, JSON, CSV, XML), exactly once
    /// each, to the gateway (docs/bulk.md, "Watched folder").
    IngestFolder(folder_ingest::cli::Args),
    /// The partner-facing client: submit, get, document, list, watch, deliveries, redeliver,
    /// endpoints, profile, completions (docs/cli.md).
    #[command(flatten)]
    Client(client::Command),
}

#[derive(Debug, Subcommand)]
enum TypesCommand {
    /// Validate a types directory (or one <name>/<version> directory in it) offline: manifest,
    /// schema, rules, XML mapping and every example. Prints `file:line: problem` for each
    /// problem and exits 1 when there is any.
    Check { dir: PathBuf },
    /// The types the API accepts (with --dir: the types a directory defines, with their status
    /// and formats).
    #[command(after_help = client::types::LIST_EXAMPLES)]
    List(client::types::ListArgs),
    /// One type the API accepts, with its JSON Schema.
    #[command(after_help = client::types::SHOW_EXAMPLES)]
    Show(client::types::ShowArgs),
    /// Validate documents as the platform would (submitted now), printing each one's reasons
    /// (`path  code  message`) or its typed core. Exits 1 when a document is rejected.
    Validate {
        /// The types directory.
        dir: PathBuf,
        /// The Receipt-Type, e.g. restaurant-bill/v1.
        #[arg(long = "type")]
        receipt_type: String,
        /// Documents: `.xml` files are XML, any other JSON.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum DltCommand {
    /// Every dead-letter topic, with its message counts.
    List,
    /// The messages of a dead-letter topic: where they came from and why they failed.
    Inspect {
        topic: String,
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Send the not-yet-replayed messages of a dead-letter topic back to the first retry tier of
    /// the service that gave up on them (after fixing the cause).
    Replay {
        topic: String,
        #[arg(long, default_value_t = 10_000)]
        limit: usize,
    },
}

#[derive(Debug, Subcommand)]
enum StoreCommand {
    /// Bring the store's schema up to date (creates a ScyllaDB keyspace with the configured
    /// replication); safe to run again. Services refuse to start on an older schema.
    Migrate,
    /// A tenant's receipts by when they were received, newest first, read from the store
    /// (operators; partners use `receipts list`).
    List(list::ListArgs),
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
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => return client::usage(&error),
    };
    // Client commands talk to an API: they never read the platform's configuration.
    match cli.command {
        Command::Client(command) => client::run(command, Cli::command).await,
        Command::Types(TypesCommand::List(args)) if args.dir.is_none() => {
            client::finish(client::types::list(args).await)
        }
        Command::Types(TypesCommand::Show(args)) => client::finish(client::types::show(args).await),
        _ => receipts_runtime::exit_code(run(cli).await),
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    // A container healthcheck: it must not depend on the configuration the container's service
    // reads (which the platform's may refuse).
    if let Command::Probe { url, timeout } = &cli.command {
        return probe(url.clone(), *timeout).await;
    }
    // A client of the gateway's HTTP API: it reads only its own flags and RECEIPTS_URL/KEY.
    if let Command::IngestFolder(args) = &cli.command {
        return Ok(folder_ingest::cli::run(args.clone()).await?);
    }
    let mut config: PlatformConfig = load_config(cli.config.as_deref())?;
    if let Some(dir) = &cli.data_dir {
        config = config.with_data_dir(dir);
    }
    match cli.command {
        Command::Up => up(config).await,
        Command::Clients(command) => clients_command(config, command).await,
        Command::Store(StoreCommand::Migrate) => {
            let version = Stores::migrate(&config.store).await?;
            println!("store schema at version {version}");
            Ok(())
        }
        Command::Store(StoreCommand::List(args)) => {
            let stores = Stores::open(&config.store).await?;
            list::print(&stores, args).await.map(drop)
        }
        Command::Dlt(command) => dlt_command(config, command).await,
        Command::Setup => {
            let telemetry = telemetry::init("receipts-setup", &config.telemetry)?;
            let report = setup::run(&config).await;
            telemetry.shutdown();
            let report = report?;
            println!(
                "ready: {} topics, {} schemas registered, store schema at version {}",
                report.topics.len(),
                report.schemas,
                report.store_version
            );
            Ok(())
        }
        Command::Probe { url, timeout } => probe(url, timeout).await,
        Command::Sample {
            receipt_type,
            format,
            invalid,
            seed,
        } => sample(&config, &receipt_type, format.as_deref(), invalid, seed),
        Command::Types(command) => types_command(command),
        Command::IngestFolder(_) => {
            unreachable!("ingest-folder is run before the configuration is read")
        }
        Command::Client(_) => unreachable!("client commands are run by main"),
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
    for (name, url) in &platform.mocks {
        println!(
            "  mock {name:<11} {url}  (faults: PUT {url}/admin/faults, counts: GET {url}/admin/stats)"
        );
    }
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

async fn dlt_command(config: PlatformConfig, command: DltCommand) -> anyhow::Result<()> {
    use receipts_kafka::dead_letters;
    match command {
        DltCommand::List => {
            let topics = dead_letters::list(&config.kafka).await?;
            println!("{:<60}  {:>8}  {:>8}", "topic", "messages", "pending");
            for t in topics {
                println!("{:<60}  {:>8}  {:>8}", t.name, t.messages, t.pending);
            }
        }
        DltCommand::Inspect { topic, limit } => {
            for d in dead_letters::inspect(&config.kafka, &topic, limit).await? {
                let failed_at = d.failed_at.map(|t| t.to_rfc3339()).unwrap_or_default();
                println!(
                    "{}:{}  key {}  event {}  {}{}",
                    d.partition,
                    d.offset,
                    d.key,
                    d.event_id.as_deref().unwrap_or("-"),
                    if d.replayed { "replayed  " } else { "" },
                    failed_at
                );
                println!("    from     {}", d.original.as_deref().unwrap_or("-"));
                println!("    attempt  {}", d.attempt.as_deref().unwrap_or("-"));
                println!(
                    "    error    {}: {}",
                    d.error_kind.as_deref().unwrap_or("-"),
                    d.error_message.as_deref().unwrap_or("-")
                );
            }
        }
        DltCommand::Replay { topic, limit } => {
            let codec =
                std::sync::Arc::new(receipts_avro::EventCodec::new(&config.schema_registry)?);
            let producer =
                receipts_kafka::EventProducer::new(&config.kafka, "receipts-dlt", codec)?;
            let replayed = dead_letters::replay(&config.kafka, &producer, &topic, limit).await?;
            println!("replayed {replayed} message(s) from {topic}");
        }
    }
    Ok(())
}

async fn probe(url: url::Url, timeout: std::time::Duration) -> anyhow::Result<()> {
    let client = reqwest::Client::builder().timeout(timeout).build()?;
    let status = client.get(url.clone()).send().await?.status();
    anyhow::ensure!(status.is_success(), "{url} answered {status}");
    Ok(())
}

fn types_command(command: TypesCommand) -> anyhow::Result<()> {
    match command {
        TypesCommand::Check { dir } => {
            let errors = receipts_validation::types::check_dir(&dir);
            for error in &errors {
                println!("{error}");
            }
            anyhow::ensure!(
                errors.is_empty(),
                "{} problem(s) in {}",
                errors.len(),
                dir.display()
            );
            println!("{}: every receipt type passes", dir.display());
        }
        TypesCommand::Validate {
            dir,
            receipt_type,
            files,
        } => {
            let (types, errors) = receipts_validation::types::TypeSet::load(&dir, None);
            for error in &errors {
                eprintln!("refused: {error}");
            }
            let mut rejected = 0;
            for file in files {
                let format = match file.extension().and_then(|e| e.to_str()) {
                    Some("xml") => DocumentFormat::Xml,
                    _ => DocumentFormat::Json,
                };
                let document = std::fs::read(&file)?;
                println!("{}", file.display());
                match types.validate(&receipt_type, format, &document, chrono::Utc::now()) {
                    Ok(valid) => println!("  valid: {}", serde_json::to_string(&valid.receipt)?),
                    Err(reasons) => {
                        rejected += 1;
                        for r in reasons {
                            println!("  {:<44} {:<24} {}", r.path, r.code, r.message);
                        }
                    }
                }
            }
            anyhow::ensure!(rejected == 0, "{rejected} document(s) rejected");
        }
        TypesCommand::List(client::types::ListArgs { dir: Some(dir), .. }) => {
            let (types, errors) = receipts_validation::types::TypeSet::load(&dir, None);
            for t in types.iter() {
                let formats: Vec<String> = t.formats.iter().map(ToString::to_string).collect();
                let status = match t.sunset {
                    Some(sunset) => format!("{:?} (sunset {sunset})", t.status).to_lowercase(),
                    None => format!("{:?}", t.status).to_lowercase(),
                };
                println!("{:<32} {:<24} {}", t.id(), status, formats.join(","));
            }
            for error in &errors {
                eprintln!("refused: {error}");
            }
        }
        TypesCommand::List(_) | TypesCommand::Show(_) => {
            unreachable!("API type commands are run by main")
        }
    }
    Ok(())
}

fn sample(
    config: &PlatformConfig,
    receipt_type: &str,
    format: Option<&str>,
    invalid: bool,
    seed: Option<u64>,
) -> anyhow::Result<()> {
    use std::io::Write;
    let types = receipts_validation::types::Catalog::open(&config.receipt_types())?.current();
    let kinds = types.submission_kinds();
    let format = match format {
        Some("json") => DocumentFormat::Json,
        Some("xml") => DocumentFormat::Xml,
        Some(other) => anyhow::bail!("--format is json or xml, not {other:?}"),
        None => kinds
            .iter()
            .find(|(name, _)| name == receipt_type)
            .map(|(_, format)| *format)
            .ok_or_else(|| {
                let mut known: Vec<&str> = kinds.iter().map(|(name, _)| name.as_str()).collect();
                known.dedup();
                anyhow::anyhow!(
                    "unknown receipt type {receipt_type:?}; known: {}",
                    known.join(", ")
                )
            })?,
    };
    let seed = seed.unwrap_or_else(rand::random);
    let document = types
        .sample(receipt_type, format, !invalid, seed)
        .ok_or_else(|| anyhow::anyhow!("{receipt_type} has no {format} sample of that kind"))?;
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(&document)?;
    stdout.write_all(b"\n")?;
    Ok(())
}

async fn clients_command(config: PlatformConfig, command: ClientsCommand) -> anyhow::Result<()> {
    let store = Stores::open(&config.store).await?.clients;
    match command {
        ClientsCommand::Create {
            tenant,
            scope,
            label,
        } => {
            let tenant = TenantId::parse(&tenant)?;
            let scope: Scope = scope.parse().map_err(anyhow::Error::msg)?;
            let created = clients::create(store.as_ref(), tenant, scope, label).await?;
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
            for c in store.clients(tenant.as_ref()).await? {
                let status = if c.is_active() { "active" } else { "revoked" };
                let label = c.label.as_deref().unwrap_or("");
                println!(
                    "{:<36}  {:<16}  {:<10}  {:<10}  {:<7}  {label}",
                    c.id, c.tenant_id, c.scope, c.key_prefix, status
                );
            }
        }
        ClientsCommand::Revoke { id } => {
            if store.revoke_client(id, now_millis()).await? {
                println!("revoked {id}");
            } else {
                anyhow::bail!("no active client {id}");
            }
        }
    }
    Ok(())
}
