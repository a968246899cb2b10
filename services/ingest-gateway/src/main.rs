use ingest_gateway::GatewayConfig;

fn main() -> std::process::ExitCode {
    receipts_service::main_with_stores(async |config: GatewayConfig, stores, shutdown| {
        let listener = tokio::net::TcpListener::bind(config.gateway.listen).await?;
        ingest_gateway::run(config, stores, listener, shutdown).await
    })
}
