fn main() -> std::process::ExitCode {
    receipts_service::main_with_stores(status_projector::run)
}
