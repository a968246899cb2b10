use ingest_gateway::GatewayConfig;
use receipts_store::Stores;

fn main() -> std::process::ExitCode {
    receipts_service::main(async |config: GatewayConfig, shutdown| {
        let stores = Stores::open(&config.store).await?;
        let listener = tokio::net::TcpListener::bind(config.gateway.listen).await?;
        ingest_gateway::run(config, stores, listener, shutdown).await
    })
}
