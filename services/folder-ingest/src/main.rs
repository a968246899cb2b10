fn main() -> std::process::ExitCode {
    receipts_service::main(folder_ingest::run)
}
