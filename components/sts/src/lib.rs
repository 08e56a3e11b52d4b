//! STS `AssumeRoleWithWebIdentity` as a sans-I/O core: an OIDC token in,
//! temporary S3 credentials out, for AWS, Ceph RGW, MinIO and moto. The
//! request is built and the answer read here; the `component` feature adds
//! the bindings that send it through `wasi:http`.

pub mod error;
pub mod request;
pub mod response;
pub mod time;

pub use error::{hint_for_code, StsError};
pub use lakeport_http as http;
pub use lakeport_http::{HttpRequest, HttpResponse};
pub use request::{encode_form, session_name, AssumeRoleRequest, MAX_DURATION_SECONDS, MIN_DURATION_SECONDS};
pub use response::{parse_assume_role_response, parse_http_response, Credentials};
pub use time::parse_rfc3339;

#[cfg(all(target_arch = "wasm32", feature = "component"))]
mod bindings;
