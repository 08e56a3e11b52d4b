//! Real keys of every supported type, made from a seed with the same
//! crates' signing side, their JWKS, and tokens signed with them.

#![allow(dead_code)]

use std::sync::OnceLock;

use base64::Engine as _;
use lakeport_gateway::Alg;
use sha2::{Sha256, Sha384, Sha512};

pub const ISSUER: &str = "https://iam.example/";
pub const AUDIENCE: &str = "https://gateway.example";
pub const NOW: i64 = 1_750_000_000;

/// The testkit's seeded generator as a `rand_core` RNG, so that keys and
/// PSS salts repeat from run to run.
pub struct SeededRng(pub lakeport_testkit::Rng);

impl rand_core::TryRng for SeededRng {
    type Error = core::convert::Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        Ok(self.0.next_u64() as u32)
    }

    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        Ok(self.0.next_u64())
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        for chunk in dst.chunks_mut(8) {
            chunk.copy_from_slice(&self.0.next_u64().to_le_bytes()[..chunk.len()]);
        }
        Ok(())
    }
}

impl rand_core::TryCryptoRng for SeededRng {}

pub struct Keys {
    pub rsa: rsa::PrivateKey,
    pub p256: p256::ecdsa::SigningKey,
    pub p384: p384::ecdsa::SigningKey,
    pub ed: ed25519_dalek::SigningKey,
}

fn seeded_bytes<const N: usize>(rng: &mut SeededRng) -> [u8; N] {
    let mut bytes = [0u8; N];
    rand_core::TryRng::try_fill_bytes(rng, &mut bytes).unwrap();
    bytes
}

impl Keys {
    fn generate(seed: u64) -> Keys {
        let mut rng = SeededRng(lakeport_testkit::Rng::new(seed));
        let keys = Keys {
            rsa: rsa::PrivateKey::new(&mut rng, 2048).unwrap(),
            p256: p256::ecdsa::SigningKey::from_slice(&seeded_bytes::<32>(&mut rng)).unwrap(),
            p384: p384::ecdsa::SigningKey::from_slice(&seeded_bytes::<48>(&mut rng)).unwrap(),
            ed: ed25519_dalek::SigningKey::from_bytes(&seeded_bytes::<32>(&mut rng)),
        };
        assert_eq!(rsa::traits::PublicKeyParts::n_bytes(&keys.rsa).len(), 256, "an RSA 2048 key");
        keys
    }

    /// The issuer's keys: kids `rsa`, `p256`, `p384`, `ed`.
    pub fn issuer() -> &'static Keys {
        static KEYS: OnceLock<Keys> = OnceLock::new();
        KEYS.get_or_init(|| Keys::generate(1))
    }

    /// Someone else's keys, to sign forgeries with.
    pub fn attacker() -> &'static Keys {
        static KEYS: OnceLock<Keys> = OnceLock::new();
        KEYS.get_or_init(|| Keys::generate(2))
    }

    /// The public JWKS, as an issuer would serve it.
    pub fn jwks(&self) -> String {
        use rsa::traits::PublicKeyParts as _;
        let rsa = self.rsa.to_public_key();
        let p256 = self.p256.verifying_key().to_sec1_point(false);
        let p384 = self.p384.verifying_key().to_sec1_point(false);
        let (p256, p384) = (&p256.as_bytes()[1..], &p384.as_bytes()[1..]);
        format!(
            r#"{{"keys":[
{{"kty":"RSA","kid":"rsa","use":"sig","n":"{}","e":"{}"}},
{{"kty":"EC","kid":"p256","use":"sig","alg":"ES256","crv":"P-256","x":"{}","y":"{}"}},
{{"kty":"EC","kid":"p384","crv":"P-384","x":"{}","y":"{}"}},
{{"kty":"OKP","kid":"ed","crv":"Ed25519","x":"{}"}},
{{"kty":"RSA","kid":"enc","use":"enc","n":"{}","e":"AQAB"}}
]}}"#,
            b64(&rsa.n_bytes()),
            b64(&rsa.e_bytes()),
            b64(&p256[..32]),
            b64(&p256[32..]),
            b64(&p384[..48]),
            b64(&p384[48..]),
            b64(self.ed.verifying_key().as_bytes()),
            b64(&rsa.n_bytes()),
        )
    }

    /// A JWS signature over `input` with the key `alg` needs.
    pub fn sign(&self, alg: Alg, input: &[u8]) -> Vec<u8> {
        use p256::ecdsa::signature::Signer as _;
        let mut rng = SeededRng(lakeport_testkit::Rng::new(input.len() as u64));
        match alg {
            Alg::RS256 => self.rsa.pkcs1v15_sign_with_rng::<Sha256, _>(&mut rng, input).unwrap(),
            Alg::RS384 => self.rsa.pkcs1v15_sign_with_rng::<Sha384, _>(&mut rng, input).unwrap(),
            Alg::RS512 => self.rsa.pkcs1v15_sign_with_rng::<Sha512, _>(&mut rng, input).unwrap(),
            Alg::PS256 => self.rsa.pss_sign_with_rng::<Sha256, _>(&mut rng, input).unwrap(),
            Alg::ES256 => {
                let s: p256::ecdsa::Signature = self.p256.sign(input);
                s.to_bytes().to_vec()
            }
            Alg::ES384 => {
                let s: p384::ecdsa::Signature = self.p384.sign(input);
                s.to_bytes().to_vec()
            }
            Alg::EdDSA => self.ed.sign(input).to_bytes().to_vec(),
        }
    }

    /// A compact JWS of `header` and `claims` (JSON texts), signed for `alg`.
    pub fn token(&self, alg: Alg, header: &str, claims: &str) -> String {
        let input = format!("{}.{}", b64(header.as_bytes()), b64(claims.as_bytes()));
        let signature = self.sign(alg, input.as_bytes());
        format!("{input}.{}", b64(&signature))
    }
}

pub fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The kid of the issuer's key for `alg`.
pub fn kid_for(alg: Alg) -> &'static str {
    match alg {
        Alg::RS256 | Alg::RS384 | Alg::RS512 | Alg::PS256 => "rsa",
        Alg::ES256 => "p256",
        Alg::ES384 => "p384",
        Alg::EdDSA => "ed",
    }
}

/// Claims a token of the issuer for the gateway has, with `extra` fields
/// (JSON members, leading comma included) after them.
pub fn claims(scope: &str, extra: &str) -> String {
    format!(
        r#"{{"iss":"{ISSUER}","sub":"alice","aud":["rucio","{AUDIENCE}"],"iat":{},"nbf":{},"exp":{},"scope":"{scope}","wlcg.ver":"1.0"{extra}}}"#,
        NOW - 10,
        NOW - 10,
        NOW + 600
    )
}

/// A valid token of the issuer, signed with `alg` under the right kid.
pub fn valid_token(alg: Alg, scope: &str) -> String {
    Keys::issuer().token(alg, &format!(r#"{{"alg":"{alg}","kid":"{}","typ":"at+jwt"}}"#, kid_for(alg)), &claims(scope, ""))
}
