//! `lakeport creds`: S3 credentials for a profile, in the shapes the tools
//! that use them read — AWS `credential_process` JSON, shell exports, or the
//! `~/.aws/config` section that wires lakeport in.

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use serde_json::json;

use super::profile::{context, ProfileArgs};
use crate::config::{Config, Profile};
use crate::creds::S3Credentials;
use crate::runtime::Runtime;
use crate::tokens::rfc3339;

#[derive(Args, Debug)]
pub struct CredsArgs {
    #[command(flatten)]
    profile: ProfileArgs,
    /// json: AWS credential_process output; env: `export AWS_...` lines;
    /// aws-config: the ~/.aws/config section that runs this command.
    #[arg(long, value_enum, default_value_t = Format::Json)]
    format: Format,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Format {
    Json,
    Env,
    AwsConfig,
}

pub fn run(args: CredsArgs) -> Result<()> {
    let config = Config::load(args.profile.config.as_deref())?;
    if args.format == Format::AwsConfig {
        // Configuration only: no token, no STS call.
        let (name, profile) = config.profile(args.profile.profile.as_deref())?;
        print!("{}", aws_config_section(&name, profile, &args.profile)?);
        return Ok(());
    }
    let runtime = Runtime::new()?;
    let ctx = context(&config, &args.profile, &runtime)?;
    let creds = ctx.s3_credentials()?;
    // Everything is formatted before anything is printed: on failure stdout stays empty.
    let text = match args.format {
        Format::Json => credential_process_json(&creds) + "\n",
        Format::Env => env_exports(&creds, ctx.profile),
        Format::AwsConfig => unreachable!("handled above"),
    };
    print!("{text}");
    Ok(())
}

/// Exactly what AWS SDKs read from a `credential_process`.
fn credential_process_json(c: &S3Credentials) -> String {
    let mut doc = json!({
        "Version": 1,
        "AccessKeyId": c.access_key_id,
        "SecretAccessKey": c.secret_access_key,
    });
    if let Some(token) = &c.session_token {
        doc["SessionToken"] = json!(token);
    }
    if let Some(exp) = c.expires_at {
        doc["Expiration"] = json!(rfc3339(exp));
    }
    doc.to_string()
}

/// POSIX-shell single quoting.
fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

fn env_exports(c: &S3Credentials, profile: &Profile) -> String {
    let mut vars = vec![("AWS_ACCESS_KEY_ID", c.access_key_id.clone()), ("AWS_SECRET_ACCESS_KEY", c.secret_access_key.clone())];
    if let Some(token) = &c.session_token {
        vars.push(("AWS_SESSION_TOKEN", token.clone()));
    }
    if let Some(exp) = c.expires_at {
        vars.push(("AWS_CREDENTIAL_EXPIRATION", rfc3339(exp)));
    }
    if let Some(region) = &profile.region {
        vars.push(("AWS_REGION", region.clone()));
        vars.push(("AWS_DEFAULT_REGION", region.clone()));
    }
    if let Some(endpoint) = &profile.s3_endpoint {
        vars.push(("AWS_ENDPOINT_URL_S3", endpoint.clone()));
    }
    vars.into_iter().map(|(k, v)| format!("export {k}={}\n", shell_quote(&v))).collect()
}

/// The `~/.aws/config` section for awscli/boto3 and the SDKs under rclone
/// (`env_auth = true`): lakeport as `credential_process`, and checksums only
/// when required, since many Ceph RGW versions reject the SDKs' default
/// trailing checksums.
fn aws_config_section(name: &str, profile: &Profile, args: &ProfileArgs) -> Result<String> {
    let exe = std::env::current_exe().context("finding the lakeport executable")?;
    let mut command = format!("{} creds --profile {name}", exe.display());
    // awscli and rclone run the command from their own working directory:
    // every file given here is passed on as an absolute path.
    for (flag, path) in [("--config", &args.config), ("--ca-file", &args.ca_file), ("--passphrase-file", &args.passphrase_file)] {
        if let Some(path) = path {
            let path = std::fs::canonicalize(path).unwrap_or_else(|_| path.clone());
            command.push_str(&format!(" {flag} {}", path.display()));
        }
    }
    let mut text = format!("[profile {name}]\ncredential_process = {command}\n");
    if let Some(region) = &profile.region {
        text.push_str(&format!("region = {region}\n"));
    }
    if let Some(endpoint) = &profile.s3_endpoint {
        text.push_str(&format!("endpoint_url = {endpoint}\n"));
    }
    text.push_str("request_checksum_calculation = when_required\nresponse_checksum_validation = when_required\n");
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temporary() -> S3Credentials {
        S3Credentials { access_key_id: "AKID".into(), secret_access_key: "se'cret".into(), session_token: Some("TOKEN".into()), expires_at: Some(1_700_000_000) }
    }

    #[test]
    fn credential_process_shape() {
        let doc: serde_json::Value = serde_json::from_str(&credential_process_json(&temporary())).unwrap();
        assert_eq!(
            doc,
            json!({"Version": 1, "AccessKeyId": "AKID", "SecretAccessKey": "se'cret", "SessionToken": "TOKEN", "Expiration": "2023-11-14T22:13:20Z"})
        );
        let fixed = S3Credentials { session_token: None, expires_at: None, ..temporary() };
        let doc: serde_json::Value = serde_json::from_str(&credential_process_json(&fixed)).unwrap();
        assert_eq!(doc, json!({"Version": 1, "AccessKeyId": "AKID", "SecretAccessKey": "se'cret"}), "static keys never expire");
    }

    #[test]
    fn env_lines_are_quoted_for_the_shell() {
        let profile = Profile { region: Some("default".into()), ..Profile::default() };
        let text = env_exports(&temporary(), &profile);
        assert!(text.contains("export AWS_SECRET_ACCESS_KEY='se'\\''cret'\n"), "{text}");
        assert!(text.contains("export AWS_SESSION_TOKEN='TOKEN'\n"));
        assert!(text.contains("export AWS_REGION='default'\n"));
    }
}
