fn main() -> std::process::ExitCode {
    receipts_service::main(validator::run)
}
