//! S3 transfers as a sans-I/O core: request builders that return signed
//! [`HttpRequest`]s, parsers for the answers, and the planning and state
//! that up- and downloads need (multipart, resume, retries, verification).
//! No I/O and no clock: the caller passes the time and does the sending.

pub mod endpoint;
pub mod error;
pub mod location;
pub mod time;

pub use endpoint::{validate_bucket_name, validate_key, validate_legacy_bucket_name, Addressing, S3Endpoint, MAX_KEY_BYTES};
pub use error::{Result, S3Error, S3ErrorKind, TransferError, TransportKind};
pub use lakeport_http::{HttpRequest, HttpResponse};
pub use location::S3Location;
