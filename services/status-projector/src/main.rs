use receipts_store::Stores;
use status_projector::ProjectorConfig;

fn main() -> std::process::ExitCode {
    receipts_service::main(async |config: ProjectorConfig, shutdown| {
        let stores = Stores::open(&config.store).await?;
        status_projector::run(config, stores, shutdown).await
    })
}
