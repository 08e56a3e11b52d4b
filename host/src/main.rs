fn main() -> std::process::ExitCode {
    lakeport::cli::main()
}
