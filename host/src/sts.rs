//! The sts component as the host sees it: the STS exchange runs inside the
//! component, which may reach only the profile's STS endpoint.

use anyhow::Result;

use crate::egress::EgressPolicy;
use crate::instance::{CallError, ComponentError, Instance};
use crate::runtime::{Grant, Runtime};

wasmtime::component::bindgen!({
    path: "../wit",
    world: "sts-component",
    require_store_data_send: true,
    with: {
        "wasi:http": wasmtime_wasi_http::p2::bindings::http,
        "wasi:io": wasmtime_wasi::p2::bindings::io,
        "wasi:clocks": wasmtime_wasi::p2::bindings::clocks,
    },
});

pub use exports::lakeport::plugins::sts::{AssumeRoleRequest, Credentials, StsError, StsRefusal};

const NAME: &str = "sts";

impl ComponentError for StsError {
    /// The one-line error: the step that failed, then the component's
    /// message, which already says what to do.
    fn message(&self) -> String {
        match self {
            StsError::Transport(m) | StsError::HostDenied(m) => format!("cannot reach STS: {m}"),
            StsError::InvalidResponse(m) => format!("cannot read the STS answer: {m}"),
            StsError::InvalidInput(m) => format!("the STS request is not valid: {m}"),
            StsError::Sts(StsRefusal { code, message, status, .. }) => format!("STS refused (HTTP {status}, {code}): {message}"),
        }
    }
}

pub struct Sts(Instance<StsComponent>);

impl Sts {
    /// An instance that may reach only the hosts of `policy`.
    pub fn new(runtime: &Runtime, policy: EgressPolicy) -> Result<Self> {
        Instance::new(runtime, NAME, Grant::http_to(policy), None, |store, component, linker| StsComponent::instantiate(store, component, linker)).map(Sts)
    }

    pub fn assume_role_with_web_identity(&mut self, request: &AssumeRoleRequest) -> Result<Credentials, CallError<StsError>> {
        self.0.call(|b, store| b.lakeport_plugins_sts().call_assume_role_with_web_identity(store, request))
    }
}
