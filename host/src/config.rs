//! Profiles: `$LAKEPORT_CONFIG` or `$XDG_CONFIG_HOME/lakeport/config.toml`,
//! one `[profiles.NAME]` table each. Unknown keys are errors: a typo in a
//! key name must not silently fall back to a default.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use serde::Deserialize;

/// How a profile gets its OIDC access token.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
pub enum GrantKind {
    #[serde(rename = "device")]
    Device,
    #[serde(rename = "client_credentials")]
    ClientCredentials,
    #[serde(rename = "oidc-agent")]
    OidcAgent,
    /// A token someone else issued, handed to the job: `token_env`,
    /// `token_file`, else WLCG bearer-token discovery (GitLab CI `id_tokens`,
    /// Kubernetes projected tokens, HTCondor jobs).
    #[serde(rename = "token")]
    Token,
    /// The job's OIDC token from GitHub Actions' token service.
    #[serde(rename = "github-actions")]
    GithubActions,
}

impl GrantKind {
    /// As the configuration spells it.
    pub fn name(self) -> &'static str {
        match self {
            GrantKind::Device => "device",
            GrantKind::ClientCredentials => "client_credentials",
            GrantKind::OidcAgent => "oidc-agent",
            GrantKind::Token => "token",
            GrantKind::GithubActions => "github-actions",
        }
    }

    /// A token handed to the job rather than obtained from an issuer with
    /// a client: no client, no store, no passphrase, nothing cached.
    pub fn is_handed_token(self) -> bool {
        matches!(self, GrantKind::Token | GrantKind::GithubActions)
    }
}

/// How a profile's client authenticates to the issuer's token endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientAuthKind {
    /// HTTP Basic with the client secret.
    Basic,
    /// The secret in the form body.
    Post,
    /// A public client: no secret.
    None,
}

/// How S3 requests name the bucket.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
pub enum AddressingStyle {
    /// `https://endpoint/bucket/key`.
    #[serde(rename = "path")]
    Path,
    /// `https://bucket.endpoint/key`.
    #[serde(rename = "virtual", alias = "virtual-hosted")]
    Virtual,
}

/// Where an RSE's storage is mounted on this machine: a PFN starting with
/// `pfn_prefix` is the file at `path` followed by the rest of the PFN.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RseMount {
    pub pfn_prefix: String,
    pub path: String,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    // OIDC
    pub issuer: Option<String>,
    pub grant: Option<GrantKind>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    /// `basic` (default with a secret), `post`, or `none` (public client).
    pub client_auth: Option<ClientAuthKind>,
    pub scopes: Option<String>,
    pub audience: Option<String>,
    pub resource: Option<String>,
    pub oidc_agent_account: Option<String>,
    /// `grant = "token"`: the environment variable holding the token.
    pub token_env: Option<String>,
    /// `grant = "token"`: the file holding the token.
    pub token_file: Option<PathBuf>,
    /// Lifetime of the issuer's refresh tokens, for `token status` when they
    /// do not say themselves (INFN IAM: 30).
    pub refresh_token_days: Option<u32>,
    /// Hosts besides the issuer's that the oidc component may reach (e.g. a
    /// token endpoint on another host), as URLs.
    #[serde(default)]
    pub allowed_hosts: Vec<String>,
    // STS
    pub sts_endpoint: Option<String>,
    pub role_arn: Option<String>,
    pub duration_seconds: Option<u32>,
    pub session_name: Option<String>,
    pub policy: Option<String>,
    pub region: Option<String>,
    // S3
    pub s3_endpoint: Option<String>,
    /// `path` (default) or `virtual`.
    pub addressing_style: Option<AddressingStyle>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    // Rucio
    pub rucio_host: Option<String>,
    pub rucio_auth_host: Option<String>,
    pub rucio_account: Option<String>,
    pub rucio_auth: Option<String>,
    pub rucio_username: Option<String>,
    pub rucio_password: Option<String>,
    /// RSE name to where it is mounted here.
    #[serde(default)]
    pub rse_mounts: BTreeMap<String, RseMount>,
    /// A Rucio client configuration (`rucio.cfg`) whose `[client]` section
    /// fills the rucio_* keys this profile leaves out.
    pub rucio_cfg: Option<PathBuf>,
    // TLS
    /// Extra CA certificates (PEM) to trust besides the system store.
    pub ca_file: Option<PathBuf>,
    /// Let tokens and passwords go to plain-http endpoints on other
    /// machines (by default only https, or http to this machine).
    #[serde(default)]
    pub allow_insecure_http: bool,
    /// `lakeport serve`: the gateway in front of this profile's S3 backend.
    pub gateway: Option<GatewaySettings>,
}

/// A profile's `[profiles.NAME.gateway]` table. Scripts outside the
/// project depend on these names.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewaySettings {
    /// The accepted token issuer (`iss`, exactly).
    pub issuer: Option<String>,
    /// The `aud` a token must carry.
    pub audience: Option<String>,
    /// `wlcg-scopes` (default) or `backend`.
    pub authorization: Option<String>,
    /// Where `lakeport serve` listens unless `--listen` says otherwise.
    pub listen: Option<String>,
    /// Answer GET and PUT with a redirect to a presigned backend URL.
    #[serde(default)]
    pub redirect: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    default_profile: Option<String>,
    #[serde(default)]
    profiles: BTreeMap<String, Profile>,
}

pub struct Config {
    pub path: PathBuf,
    file: ConfigFile,
}

/// Where the configuration is read from.
pub fn config_path(explicit: Option<&Path>) -> Result<PathBuf> {
    if let Some(p) = explicit {
        return Ok(p.to_path_buf());
    }
    if let Some(p) = std::env::var_os("LAKEPORT_CONFIG").filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    crate::paths::config_dir()
        .map(|d| d.join("config.toml"))
        .ok_or_else(|| anyhow!("cannot find the configuration: set LAKEPORT_CONFIG or HOME"))
}

impl Config {
    pub fn load(explicit: Option<&Path>) -> Result<Config> {
        let path = config_path(explicit)?;
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!("cannot read the configuration {} (create it with a [profiles.NAME] table; see the README)", path.display())
        })?;
        let file: ConfigFile = toml::from_str(&text).map_err(|e| {
            let msg = e.message().to_string();
            let at = e.span().map(|s| {
                let line = text[..s.start].matches('\n').count() + 1;
                format!(" at line {line}")
            });
            anyhow!("invalid configuration {}{}: {msg}", path.display(), at.unwrap_or_default())
        })?;
        for name in file.profiles.keys() {
            if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')) || name.starts_with('.') {
                bail!("invalid profile name '{name}' in {}: use letters, digits, '-', '_' and '.'", path.display());
            }
        }
        Ok(Config { path, file })
    }

    pub fn profile_names(&self) -> impl Iterator<Item = &str> {
        self.file.profiles.keys().map(String::as_str)
    }

    /// The named profile; else `$LAKEPORT_PROFILE`, `default_profile`, or
    /// the only profile there is.
    pub fn profile(&self, name: Option<&str>) -> Result<(String, &Profile)> {
        let env = std::env::var("LAKEPORT_PROFILE").ok().filter(|s| !s.is_empty());
        let chosen = name.map(String::from).or(env).or_else(|| self.file.default_profile.clone());
        let chosen = match chosen {
            Some(n) => n,
            None if self.file.profiles.len() == 1 => self.file.profiles.keys().next().unwrap().clone(),
            None => bail!(
                "no profile given: pass --profile NAME (profiles in {}: {})",
                self.path.display(),
                self.profile_names().collect::<Vec<_>>().join(", ")
            ),
        };
        match self.file.profiles.get(&chosen) {
            Some(p) => Ok((chosen, p)),
            None => bail!(
                "no profile '{chosen}' in {} (profiles: {})",
                self.path.display(),
                self.profile_names().collect::<Vec<_>>().join(", ")
            ),
        }
    }
}

/// The `[client]` section of a Rucio client configuration (`rucio.cfg`,
/// INI): its keys and values, comments and other sections left out.
pub fn rucio_client_section(path: &Path) -> Result<BTreeMap<String, String>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read the Rucio configuration {}", path.display()))?;
    let mut section = String::new();
    let mut client = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.trim().to_string();
        } else if section == "client" {
            if let Some((key, value)) = line.split_once('=').or_else(|| line.split_once(':')) {
                client.insert(key.trim().to_string(), value.trim().to_string());
            }
        }
    }
    if client.is_empty() {
        bail!("{} has no [client] section", path.display());
    }
    Ok(client)
}

impl Profile {
    pub fn require<'a>(&'a self, key: &str, value: &'a Option<String>, profile: &str) -> Result<&'a str> {
        value.as_deref().filter(|v| !v.is_empty()).ok_or_else(|| anyhow!("profile '{profile}' has no '{key}': add it to the configuration"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, text).unwrap();
        Config::load(Some(&path))
    }

    #[test]
    fn reads_profiles_and_rejects_typos() {
        let c = parse("[profiles.infncloud]\nissuer = \"https://iam.cloud.infn.it/\"\ngrant = \"device\"\naudience = \"object\"\n").unwrap();
        let (name, p) = c.profile(None).unwrap();
        assert_eq!((name.as_str(), p.grant), ("infncloud", Some(GrantKind::Device)));
        let err = parse("[profiles.x]\nissur = \"https://a\"\n").err().unwrap().to_string();
        assert!(err.contains("unknown field `issur`") && err.contains("line 2"), "{err}");
        let err = parse("[profiles.x]\ngrant = \"password\"\n").err().unwrap().to_string();
        assert!(err.contains("unknown variant `password`"), "{err}");
        let two = parse("[profiles.a]\n[profiles.b]\n").unwrap();
        assert!(two.profile(None).unwrap_err().to_string().contains("pass --profile"));
        assert!(two.profile(Some("c")).unwrap_err().to_string().contains("no profile 'c'"));
        assert!(parse("[profiles.\"../x\"]\n").is_err());
    }

    #[test]
    fn rse_mounts_refuse_unknown_keys_and_missing_ones() {
        let mount = |fields: &str| parse(&format!("[profiles.x]\nrse_mounts = {{ SITE = {{ {fields} }} }}\n"));
        let c = mount("pfn_prefix = \"root://a/\", path = \"/mnt/a\"").unwrap();
        assert_eq!(c.profile(None).unwrap().1.rse_mounts["SITE"], RseMount { pfn_prefix: "root://a/".into(), path: "/mnt/a".into() });
        let err = mount("pfn_prefix = \"root://a/\", pth = \"/mnt/a\"").err().expect("a typo in rse_mounts is refused").to_string();
        assert!(err.contains("unknown field `pth`") && err.contains("line 2"), "{err}");
        let err = mount("pfn_prefix = \"root://a/\"").err().expect("a mount without its path is refused").to_string();
        assert!(err.contains("missing field `path`"), "{err}");
    }
}
