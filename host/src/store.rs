//! Secrets at rest: refresh tokens and client secrets, one file per profile
//! under `$XDG_DATA_HOME/lakeport/secrets/` (directory 0700, files 0600),
//! encrypted with XChaCha20-Poly1305 under a key derived from a passphrase
//! with Argon2id. The profile name is authenticated with the data, so a file
//! copied to another profile's name does not open. A wrong passphrase fails
//! the authentication check and changes nothing.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use serde::{Deserialize, Serialize};

const FORMAT: &str = "lakeport-secrets-v1";
/// Argon2id parameters for new files (RFC 9106's second recommendation:
/// 64 MiB, 3 passes); files record their own, so these can grow later.
const MEMORY_KIB: u32 = 64 * 1024;
const ITERATIONS: u32 = 3;
const PARALLELISM: u32 = 1;

/// What one profile keeps secret.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Secrets {
    pub issuer: Option<String>,
    pub client_id: Option<String>,
    pub refresh_token: Option<String>,
    pub client_secret: Option<String>,
    /// Unix seconds, when known (from the refresh token's `exp`, if a JWT).
    pub refresh_expires_at: Option<i64>,
    /// Unix seconds of the login that produced the refresh token.
    pub obtained_at: Option<i64>,
    /// The Rucio userpass password (`lakeport rucio login`).
    #[serde(default)]
    pub rucio_password: Option<String>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secrets")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("has_refresh_token", &self.refresh_token.is_some())
            .field("has_client_secret", &self.client_secret.is_some())
            .field("refresh_expires_at", &self.refresh_expires_at)
            .field("has_rucio_password", &self.rucio_password.is_some())
            .finish()
    }
}

#[derive(Serialize, Deserialize)]
struct Kdf {
    algorithm: String,
    memory_kib: u32,
    iterations: u32,
    parallelism: u32,
    salt: String,
}

/// What `token status` may read without the passphrase: nothing secret.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicInfo {
    pub issuer: Option<String>,
    pub client_id: Option<String>,
    pub refresh_expires_at: Option<i64>,
    pub obtained_at: Option<i64>,
}

#[derive(Serialize, Deserialize)]
struct Envelope {
    format: String,
    #[serde(default)]
    public: PublicInfo,
    kdf: Kdf,
    cipher: String,
    nonce: String,
    ciphertext: String,
}

#[derive(Clone)]
pub struct Store {
    dir: PathBuf,
}

fn random<const N: usize>() -> Result<[u8; N]> {
    let mut bytes = [0u8; N];
    getrandom::getrandom(&mut bytes).map_err(|e| anyhow!("no randomness from the OS: {e}"))?;
    Ok(bytes)
}

fn derive_key(passphrase: &str, kdf: &Kdf) -> Result<[u8; 32]> {
    if kdf.algorithm != "argon2id" {
        bail!("the token store uses an unknown key derivation '{}'", kdf.algorithm);
    }
    let salt = B64.decode(&kdf.salt).context("the token store file is damaged (salt)")?;
    let params = argon2::Params::new(kdf.memory_kib, kdf.iterations, kdf.parallelism, Some(32))
        .map_err(|e| anyhow!("the token store file has invalid key derivation parameters: {e}"))?;
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut key = [0u8; 32];
    argon.hash_password_into(passphrase.as_bytes(), &salt, &mut key).map_err(|e| anyhow!("deriving the key failed: {e}"))?;
    Ok(key)
}

fn aad(profile: &str) -> Vec<u8> {
    format!("{FORMAT}\0{profile}").into_bytes()
}

impl Store {
    pub fn open_default() -> Result<Store> {
        let dir = crate::paths::data_dir().ok_or_else(|| anyhow!("cannot find the data directory: set XDG_DATA_HOME or HOME"))?;
        Ok(Store { dir: dir.join("secrets") })
    }

    pub fn at(dir: &Path) -> Store {
        Store { dir: dir.to_path_buf() }
    }

    pub fn path(&self, profile: &str) -> PathBuf {
        self.dir.join(format!("{profile}.json"))
    }

    pub fn exists(&self, profile: &str) -> bool {
        self.path(profile).exists()
    }

    /// The profile's store file, if there is one, refused unless only this
    /// user could have written it (see `paths::read_trusted`): a planted
    /// file could hold a refresh token of someone else's choosing.
    fn read(&self, profile: &str) -> Result<Option<(PathBuf, Envelope)>> {
        let path = self.path(profile);
        let bytes = match crate::paths::read_trusted(&path) {
            Ok(Some(bytes)) => bytes,
            Ok(None) => return Ok(None),
            Err(e @ crate::paths::Untrusted::Exposed(_)) => bail!("refusing the token store: {e}"),
            Err(e) => bail!("{e}"),
        };
        let envelope = serde_json::from_slice(&bytes)
            .map_err(|_| anyhow!("the token store file {} is damaged; run `lakeport token logout` and log in again", path.display()))?;
        Ok(Some((path, envelope)))
    }

    pub fn load(&self, profile: &str, passphrase: &str) -> Result<Option<Secrets>> {
        let Some((path, envelope)) = self.read(profile)? else { return Ok(None) };
        let damaged = || anyhow!("the token store file {} is damaged; run `lakeport token logout` and log in again", path.display());
        if envelope.format != FORMAT || envelope.cipher != "xchacha20poly1305" {
            bail!("the token store file {} has an unknown format", path.display());
        }
        let key = derive_key(passphrase, &envelope.kdf)?;
        let nonce = B64.decode(&envelope.nonce).map_err(|_| damaged())?;
        let ciphertext = B64.decode(&envelope.ciphertext).map_err(|_| damaged())?;
        if nonce.len() != 24 {
            return Err(damaged());
        }
        let cipher = XChaCha20Poly1305::new(&key.into());
        let plain = cipher
            .decrypt(XNonce::from_slice(&nonce), Payload { msg: &ciphertext, aad: &aad(profile) })
            .map_err(|_| anyhow!("wrong passphrase for the token store of profile '{profile}' (or the file was altered)"))?;
        let secrets = serde_json::from_slice(&plain).map_err(|_| damaged())?;
        Ok(Some(secrets))
    }

    /// Encrypts and writes, replacing the file atomically (0600).
    pub fn save(&self, profile: &str, passphrase: &str, secrets: &Secrets) -> Result<()> {
        let salt = random::<16>()?;
        let kdf = Kdf {
            algorithm: "argon2id".into(),
            memory_kib: MEMORY_KIB,
            iterations: ITERATIONS,
            parallelism: PARALLELISM,
            salt: B64.encode(salt),
        };
        let key = derive_key(passphrase, &kdf)?;
        let nonce = random::<24>()?;
        let plain = serde_json::to_vec(secrets)?;
        let ciphertext = XChaCha20Poly1305::new(&key.into())
            .encrypt(XNonce::from_slice(&nonce), Payload { msg: &plain, aad: &aad(profile) })
            .map_err(|_| anyhow!("encryption failed"))?;
        let public = PublicInfo {
            issuer: secrets.issuer.clone(),
            client_id: secrets.client_id.clone(),
            refresh_expires_at: secrets.refresh_expires_at,
            obtained_at: secrets.obtained_at,
        };
        let envelope = Envelope { format: FORMAT.into(), public, kdf, cipher: "xchacha20poly1305".into(), nonce: B64.encode(nonce), ciphertext: B64.encode(ciphertext) };
        let path = self.path(profile);
        crate::paths::write_private(&path, serde_json::to_string_pretty(&envelope)?.as_bytes())
            .with_context(|| format!("cannot write the token store {}", path.display()))
    }

    /// The unencrypted part: when the stored refresh token was obtained and
    /// when it expires, if known. None when nothing is stored.
    pub fn info(&self, profile: &str) -> Result<Option<PublicInfo>> {
        Ok(self.read(profile)?.map(|(_, envelope)| envelope.public))
    }

    pub fn remove(&self, profile: &str) -> Result<bool> {
        match std::fs::remove_file(self.path(profile)) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e).context("cannot remove the token store file"),
        }
    }

    /// Profiles with a store file.
    pub fn profiles(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&self.dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.strip_suffix(".json").map(String::from))
            .filter(|n| !n.starts_with('.'))
            .collect();
        names.sort();
        names
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn round_trip_wrong_passphrase_and_swapped_files() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::at(&dir.path().join("secrets"));
        let secrets = Secrets { refresh_token: Some("RT-very-secret".into()), client_secret: Some("CS-secret".into()), ..Default::default() };
        store.save("a", "correct horse", &secrets).unwrap();
        assert_eq!(store.load("a", "correct horse").unwrap().unwrap(), secrets);
        let raw = std::fs::read_to_string(store.path("a")).unwrap();
        assert!(!raw.contains("RT-very-secret") && !raw.contains("CS-secret"));
        assert_eq!(std::fs::metadata(store.path("a")).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::metadata(dir.path().join("secrets")).unwrap().permissions().mode() & 0o777, 0o700);
        let err = store.load("a", "wrong").unwrap_err().to_string();
        assert!(err.contains("wrong passphrase"), "{err}");
        assert_eq!(store.load("a", "correct horse").unwrap().unwrap(), secrets, "a failed attempt changes nothing");
        std::fs::copy(store.path("a"), store.path("b")).unwrap();
        assert!(store.load("b", "correct horse").is_err(), "bound to its profile");
        assert!(store.load("missing", "x").unwrap().is_none());
        assert_eq!(store.profiles(), ["a", "b"]);
        assert_eq!(store.info("a").unwrap().unwrap().refresh_expires_at, None);
        assert!(store.info("missing").unwrap().is_none());
        std::fs::write(store.path("a"), "{not json").unwrap();
        assert!(store.load("a", "correct horse").unwrap_err().to_string().contains("damaged"));
    }

    #[test]
    fn a_store_others_could_write_is_refused_with_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::at(&dir.path().join("secrets"));
        store.save("a", "pass", &Secrets { refresh_token: Some("RT".into()), ..Default::default() }).unwrap();
        let file = store.path("a");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o666)).unwrap();
        for err in [store.load("a", "pass").unwrap_err(), store.info("a").unwrap_err()] {
            let err = err.to_string();
            assert!(err.starts_with("refusing the token store: "), "{err}");
            assert!(err.contains(&format!("run `chmod go-w {}`", file.display())), "{err}");
        }
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(store.load("a", "pass").unwrap().is_some(), "fixed as told, it opens again");
    }
}
