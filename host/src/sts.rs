//! The sts component as the host sees it: the STS exchange runs inside the
//! component, which may reach only the profile's STS endpoint.

use anyhow::Result;
use wasmtime::Store;

use crate::egress::EgressPolicy;
use crate::runtime::{arm_deadline, call_error, Grant, HostState, Runtime};

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

impl StsError {
    /// The one-line error: the step that failed, then the component's
    /// message, which already says what to do.
    pub fn sentence(&self) -> String {
        match self {
            StsError::Transport(m) | StsError::HostDenied(m) => format!("cannot reach STS: {m}"),
            StsError::InvalidResponse(m) => format!("cannot read the STS answer: {m}"),
            StsError::InvalidInput(m) => format!("the STS request is not valid: {m}"),
            StsError::Sts(StsRefusal { code, message, status, .. }) => format!("STS refused (HTTP {status}, {code}): {message}"),
        }
    }
}

pub struct Sts {
    store: Store<HostState>,
    bindings: StsComponent,
}

macro_rules! call {
    ($self:ident, $method:ident $(, $arg:expr)*) => {{
        arm_deadline(&mut $self.store);
        $self.bindings.lakeport_plugins_sts().$method(&mut $self.store $(, $arg)*).map_err(|e| call_error(NAME, e))
    }};
}

impl Sts {
    /// An instance that may reach only the hosts of `policy`.
    pub fn new(runtime: &Runtime, policy: EgressPolicy) -> Result<Self> {
        let loaded = runtime.load(NAME, Grant::http_to(policy))?;
        let (mut store, linker) = runtime.store_for(&loaded)?;
        let bindings = StsComponent::instantiate(&mut store, &loaded.component, &linker).map_err(|e| call_error(NAME, e))?;
        Ok(Sts { store, bindings })
    }

    pub fn assume_role_with_web_identity(&mut self, request: &AssumeRoleRequest) -> Result<Result<Credentials, StsError>> {
        call!(self, call_assume_role_with_web_identity, request)
    }
}
