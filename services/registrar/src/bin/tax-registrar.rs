fn main() -> std::process::ExitCode {
    registrar::main(receipts_registries::RegistryConfig::tax_default())
}
