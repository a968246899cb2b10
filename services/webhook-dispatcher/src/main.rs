use receipts_store::Stores;
use webhook_dispatcher::DispatcherConfig;

fn main() -> std::process::ExitCode {
    receipts_service::main(async |config: DispatcherConfig, shutdown| {
        let stores = Stores::open(&config.store).await?;
        webhook_dispatcher::run(config, stores, shutdown).await
    })
}
