//! What every profile-using command takes: `--profile`, `--config`,
//! `--ca-file`, `--passphrase-file`.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use crate::config::Config;
use crate::runtime::Runtime;
use crate::store::Store;
use crate::tokens::{PassphraseSource, TokenContext};

#[derive(Args, Debug, Clone)]
pub struct ProfileArgs {
    /// Profile in the configuration (else $LAKEPORT_PROFILE or the only one).
    #[arg(long, short = 'p')]
    pub profile: Option<String>,
    /// Configuration file (else $LAKEPORT_CONFIG or ~/.config/lakeport/config.toml).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Extra CA certificates (PEM) to trust besides the system store.
    #[arg(long, value_name = "PEM")]
    pub ca_file: Option<PathBuf>,
    /// Read the token store passphrase from this file (else $LAKEPORT_PASSPHRASE or a prompt).
    #[arg(long, value_name = "PATH")]
    pub passphrase_file: Option<PathBuf>,
}

pub fn context<'a>(config: &'a Config, args: &ProfileArgs, runtime: &'a Runtime) -> Result<TokenContext<'a>> {
    let (name, profile) = config.profile(args.profile.as_deref())?;
    Ok(TokenContext {
        name,
        profile,
        runtime,
        store: Store::open_default()?,
        passphrase: PassphraseSource { file: args.passphrase_file.clone() },
        ca_file: args.ca_file.clone(),
    })
}

