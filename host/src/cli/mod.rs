//! The `lakeport` command line. Scripts depend on it: keep it stable.

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

mod components;
mod creds;
mod profile;
mod rucio;
mod s3;
mod serve;
mod sign;
mod token;

#[derive(Parser)]
#[command(name = "lakeport", version, about = "Token-secured object storage and data lakes, through sandboxed WebAssembly components")]
struct Cli {
    /// Print diagnostics on stderr (never secrets).
    #[arg(short, long, global = true)]
    verbose: bool,

    /// Output format.
    #[arg(long, global = true, value_enum, default_value_t = Output::Text)]
    output: Output,

    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Sign a request with AWS Signature V4 and print it (debugging and scripting).
    Sign(sign::SignArgs),
    /// Make a presigned URL (same as `sign --presign`).
    Presign(sign::SignArgs),
    /// List the components with their sizes, WIT worlds, imports and grants.
    Components(components::ComponentsArgs),
    /// OIDC tokens per profile: login, get, status, logout, list.
    Token(token::TokenArgs),
    /// Temporary S3 credentials for a profile (an AWS credential_process).
    Creds(creds::CredsArgs),
    /// S3 objects and transfers: ls, cp, rm, mb, rb, stat, presign, uploads.
    S3(s3::S3Args),
    /// Rucio: DIDs, replicas, replication rules, make-available.
    Rucio(rucio::RucioArgs),
    /// Run the gateway: bearer-token HTTP access to the profile's S3 backend.
    Serve(serve::ServeArgs),
}

pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    crate::log::set_verbose(cli.verbose);
    let result = match cli.command {
        Command::Sign(args) => sign::run(args, false, cli.output),
        Command::Presign(args) => sign::run(args, true, cli.output),
        Command::Components(args) => components::run(args, cli.output),
        Command::Token(args) => token::run(args, cli.output),
        Command::Creds(args) => creds::run(args),
        Command::S3(args) => s3::run(args, cli.output),
        Command::Rucio(args) => rucio::run(args, cli.output),
        Command::Serve(args) => serve::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line: the context chain joined, outermost first.
            let line = e.chain().map(|c| c.to_string()).collect::<Vec<_>>().join(": ");
            eprintln!("lakeport: error: {}", crate::log::printable(&line.replace('\n', " ")));
            ExitCode::from(1)
        }
    }
}
