//! The lakeport host: runs lakeport's WebAssembly components under
//! wasmtime, granting each only what it needs. The logic lives in the
//! components; this crate moves bytes, reads files the user named, and
//! talks to the terminal.

pub mod cli;
pub mod config;
pub mod creds;
pub mod egress;
pub mod embedded;
pub mod file_md5;
pub mod instance;
pub mod job_token;
pub mod log;
pub mod objects;
pub mod oidc;
pub mod paths;
pub mod progress;
pub mod rucio;
pub mod runtime;
pub mod serve;
pub mod shared_store;
pub mod sigv4;
pub mod store;
pub mod sts;
pub mod tokens;
pub mod transfer;
