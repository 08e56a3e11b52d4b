//! `lakeport serve --profile P [--listen ADDR]`: the gateway for a
//! profile's `[profiles.P.gateway]` table and its S3 backend.

use std::net::SocketAddr;

use anyhow::{anyhow, bail, Context, Result};
use clap::Args;

use super::profile::ProfileArgs;
use crate::config::Config;
use crate::egress::{AllowedHost, EgressPolicy};
use crate::runtime::Runtime;
use crate::serve::{serve, ServeOptions};

/// Where the gateway listens when neither `--listen` nor the profile says.
const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

#[derive(Args, Debug)]
pub struct ServeArgs {
    #[command(flatten)]
    profile: ProfileArgs,
    /// Address to listen on (else the profile's gateway.listen, else 127.0.0.1:8080).
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
}

pub fn run(args: ServeArgs) -> Result<()> {
    let config = Config::load(args.profile.config.as_deref())?;
    let (name, profile) = config.profile(args.profile.profile.as_deref())?;
    let gateway = profile
        .gateway
        .as_ref()
        .ok_or_else(|| anyhow!("profile '{name}' has no [profiles.{name}.gateway] table: add one with issuer and audience"))?;
    let required = |key: &str, value: &Option<String>| {
        value.clone().filter(|v| !v.is_empty()).ok_or_else(|| anyhow!("profile '{name}' has no gateway.{key}: add it to [profiles.{name}.gateway]"))
    };
    let issuer = required("issuer", &gateway.issuer)?;
    let audience = required("audience", &gateway.audience)?;
    let authorization = gateway.authorization.clone().unwrap_or_else(|| "wlcg-scopes".into());
    if !matches!(authorization.as_str(), "wlcg-scopes" | "backend") {
        bail!("profile '{name}': gateway.authorization is '{authorization}': use \"wlcg-scopes\" or \"backend\"");
    }
    let s3_endpoint = profile.require("s3_endpoint", &profile.s3_endpoint, &name)?.to_string();
    // Static service keys, or each caller's own from STS with their token.
    let mut allowed_urls = vec![("gateway.issuer", issuer.clone()), ("s3_endpoint", s3_endpoint.clone())];
    let keys: Vec<(&str, String)> = match (&profile.access_key_id, &profile.secret_access_key, &profile.sts_endpoint) {
        (Some(id), Some(secret), None) => vec![("access_key_id", id.clone()), ("secret_access_key", secret.clone())],
        (None, None, Some(endpoint)) => {
            allowed_urls.push(("sts_endpoint", endpoint.clone()));
            let mut keys = vec![("sts_endpoint", endpoint.clone()), ("role_arn", profile.require("role_arn", &profile.role_arn, &name)?.to_string())];
            if let Some(d) = profile.duration_seconds {
                keys.push(("duration_seconds", d.to_string()));
            }
            keys
        }
        (Some(_), Some(_), Some(_)) => bail!("profile '{name}' has both static keys and sts_endpoint; keep one"),
        _ => bail!(
            "profile '{name}' has no S3 keys for the gateway: set access_key_id and secret_access_key, or sts_endpoint and role_arn for each caller's own keys"
        ),
    };
    let listen_text = args.listen.or_else(|| gateway.listen.clone()).unwrap_or_else(|| DEFAULT_LISTEN.into());
    let listen: SocketAddr =
        listen_text.parse().map_err(|_| anyhow!("'{listen_text}' is not an address to listen on: use IP:PORT, e.g. 127.0.0.1:8080"))?;

    // Outgoing requests: the issuer (discovery and keys), the backend, STS.
    let allowed = allowed_urls
        .iter()
        .map(|(key, url)| AllowedHost::from_url(url).with_context(|| format!("profile '{name}': {key}")))
        .collect::<Result<Vec<_>>>()?;
    let ca_file = args.profile.ca_file.clone().or_else(|| profile.ca_file.clone());
    let egress = EgressPolicy::new(allowed, ca_file);
    let mut values = vec![
        ("issuer".to_string(), issuer),
        ("audience".to_string(), audience),
        ("authorization".to_string(), authorization),
        ("s3_endpoint".to_string(), s3_endpoint),
        ("redirect".to_string(), gateway.redirect.to_string()),
    ];
    values.extend(keys.into_iter().map(|(k, v)| (k.to_string(), v)));
    if let Some(region) = &profile.region {
        values.push(("region".to_string(), region.clone()));
    }
    serve(Runtime::new()?, ServeOptions { listen, config: values, egress })
}
