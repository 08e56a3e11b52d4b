//! `lakeport sign` and `lakeport presign`.

use std::path::PathBuf;

use anyhow::{anyhow, bail, Context, Result};
use clap::Args;
use serde_json::json;

use super::Output;
use crate::runtime::Runtime;
use crate::instance::ComponentError;
use crate::sigv4::{Credentials, Payload, SignOptions, SignableRequest, SignedRequest, Sigv4, SigningTime};

/// Default validity of a presigned URL.
const DEFAULT_EXPIRES: u32 = 3600;

#[derive(Args, Debug)]
pub struct SignArgs {
    /// HTTP method, e.g. GET or PUT.
    method: String,
    /// Absolute http(s) URL.
    url: String,
    /// 'Name: value'; repeatable, order kept; repeated names are joined with ','.
    #[arg(short = 'H', long = "header", value_name = "NAME: VALUE")]
    headers: Vec<String>,
    /// Payload to hash (empty body when absent).
    #[arg(long, value_name = "PATH", conflicts_with = "unsigned_payload")]
    body_file: Option<PathBuf>,
    /// Send x-amz-content-sha256: UNSIGNED-PAYLOAD.
    #[arg(long)]
    unsigned_payload: bool,
    /// Also send x-amz-content-sha256 for a non-S3 service.
    #[arg(long)]
    sign_body: bool,
    /// Keep dot segments and repeated slashes (non-S3 services).
    #[arg(long)]
    no_normalize_path: bool,
    /// Query signing: print a presigned URL.
    #[arg(long)]
    presign: bool,
    /// Presigned URL validity in seconds (at most 604800, 7 days).
    #[arg(long, value_name = "SECS")]
    expires: Option<u32>,
    /// Signing region.
    #[arg(long, env = "AWS_REGION", default_value = "us-east-1")]
    region: String,
    /// Signing service; `s3` selects the S3 rules.
    #[arg(long, default_value = "s3")]
    service: String,
    /// Signing time, YYYYMMDDTHHMMSSZ (default: now).
    #[arg(long, value_name = "YYYYMMDDTHHMMSSZ")]
    time: Option<String>,
    #[arg(long, env = "AWS_ACCESS_KEY_ID", hide_env_values = true)]
    access_key: Option<String>,
    #[arg(long, env = "AWS_SECRET_ACCESS_KEY", hide_env_values = true)]
    secret_key: Option<String>,
    #[arg(long, env = "AWS_SESSION_TOKEN", hide_env_values = true)]
    session_token: Option<String>,
}

/// Splits `Name: value` at the first colon.
fn parse_header(raw: &str) -> Result<(String, String)> {
    let (name, value) = raw
        .split_once(':')
        .ok_or_else(|| anyhow!("bad header '{raw}': expected 'Name: value'"))?;
    Ok((name.trim().to_string(), value.to_string()))
}

fn credentials(args: &SignArgs) -> Result<Credentials> {
    let access_key_id = args.access_key.clone().filter(|s| !s.is_empty());
    let secret_access_key = args.secret_key.clone().filter(|s| !s.is_empty());
    match (access_key_id, secret_access_key) {
        (Some(access_key_id), Some(secret_access_key)) => Ok(Credentials {
            access_key_id,
            secret_access_key,
            session_token: args.session_token.clone().filter(|s| !s.is_empty()),
        }),
        _ => bail!("no credentials: pass --access-key and --secret-key, or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"),
    }
}

pub fn run(args: SignArgs, presign_command: bool, output: Output) -> Result<()> {
    let presign = presign_command || args.presign;
    if args.expires.is_some() && !presign {
        bail!("--expires applies to presigned URLs: add --presign or use 'lakeport presign'");
    }
    let headers = args.headers.iter().map(|h| parse_header(h)).collect::<Result<Vec<_>>>()?;
    let credentials = credentials(&args)?;
    let time = match &args.time {
        Some(t) => SigningTime::AmzDate(t.clone()),
        None => SigningTime::UnixSeconds(crate::tokens::now()),
    };

    let runtime = Runtime::new()?;
    let mut sigv4 = Sigv4::new(&runtime)?;
    let payload = match (&args.body_file, args.unsigned_payload) {
        (_, true) => Payload::UnsignedPayload,
        (Some(path), false) => {
            let file = std::fs::File::open(path).with_context(|| format!("cannot read the body file {}", path.display()))?;
            let digest = sigv4
                .payload_sha256(std::io::BufReader::new(file))
                .with_context(|| format!("cannot read the body file {}", path.display()))?;
            Payload::Precomputed(digest)
        }
        (None, false) => Payload::Empty,
    };
    let request = SignableRequest { method: args.method.clone(), url: args.url.clone(), headers, payload };
    let options = SignOptions {
        region: args.region.clone(),
        service: args.service.clone(),
        time,
        presign_expires: presign.then(|| args.expires.unwrap_or(DEFAULT_EXPIRES)),
        normalize_path: !args.no_normalize_path,
        sign_body: args.sign_body,
        sign_session_token: true,
    };
    let signed = sigv4.sign(&request, &credentials, &options).map_err(|e| e.explained(|e| anyhow!("cannot sign: {}", e.message())))?;
    print_signed(&signed, presign, output);
    Ok(())
}

fn print_signed(signed: &SignedRequest, presign: bool, output: Output) {
    match output {
        Output::Json => {
            let doc = json!({
                "method": signed.method,
                "url": signed.url,
                "headers": signed.headers.iter().map(|(n, v)| [n, v]).collect::<Vec<_>>(),
                "signature": signed.signature,
                "canonical_request": signed.canonical_request,
                "string_to_sign": signed.string_to_sign,
                "signed_headers": signed.signed_headers,
                "authorization": signed.authorization,
                "payload_hash": signed.payload_hash,
            });
            println!("{doc}");
        }
        // A presigned URL is what people copy into a browser or curl.
        Output::Text if presign => println!("{}", signed.url),
        Output::Text => {
            let target = signed.url.splitn(4, '/').nth(3).map_or_else(|| "/".to_string(), |rest| format!("/{rest}"));
            println!("{} {target} HTTP/1.1", signed.method);
            for (name, value) in &signed.headers {
                println!("{name}: {value}");
            }
            println!();
        }
    }
}
