//! One component instance as the host holds it: the store (with the
//! grant's limits) and the generated bindings, made one way for every
//! component, and called one way: the time limit re-armed before each
//! call, a trap turned into one line for the user, and the component's own
//! error kept as a typed value beside it.

use std::time::Duration;

use anyhow::Result;
use wasmtime::component::{Component, Linker};
use wasmtime::Store;

use crate::runtime::{arm_deadline, arm_deadline_for, call_error, Grant, HostState, Runtime};

/// A component's own error type: what it says to the user, in one line
/// that already says what to do.
pub trait ComponentError: std::fmt::Debug + Send + Sync + 'static {
    fn message(&self) -> String;
}

/// Why a call into a component gave no value.
#[derive(Debug)]
pub enum CallError<E> {
    /// The component answered with its own error.
    Refused(E),
    /// The component was stopped (a trap: a bug, its memory cap or its
    /// time limit), or could not be called.
    Stopped(anyhow::Error),
}

impl<E> CallError<E> {
    /// The component's error, for a caller that branches on it.
    pub fn refusal(&self) -> Option<&E> {
        match self {
            CallError::Refused(e) => Some(e),
            CallError::Stopped(_) => None,
        }
    }

    pub fn into_refusal(self) -> Option<E> {
        match self {
            CallError::Refused(e) => Some(e),
            CallError::Stopped(_) => None,
        }
    }

    /// The error for the user: `explain` words the component's error; a
    /// stop is passed on as it is.
    pub fn explained(self, explain: impl FnOnce(E) -> anyhow::Error) -> anyhow::Error {
        match self {
            CallError::Refused(e) => explain(e),
            CallError::Stopped(e) => e,
        }
    }
}

impl<E: ComponentError> std::fmt::Display for CallError<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Refused(e) => f.write_str(&e.message()),
            CallError::Stopped(e) => write!(f, "{e}"),
        }
    }
}

impl<E: ComponentError> std::error::Error for CallError<E> {}

/// Extra imports a component's wrapper links in (lakeport's own
/// interfaces), with the state they need.
pub type Imports<'a> = Box<dyn FnOnce(&mut Linker<HostState>, &mut HostState) -> wasmtime::Result<()> + 'a>;

/// One instance of a component and its generated bindings `B`.
pub struct Instance<B> {
    name: &'static str,
    store: Store<HostState>,
    bindings: B,
}

impl<B> Instance<B> {
    /// Loads the component `name`, makes a store and linker for `grant`
    /// (plus `imports`, if any), and instantiates it with `instantiate`
    /// (the bindings' own `instantiate`).
    pub fn new(
        runtime: &Runtime,
        name: &'static str,
        grant: Grant,
        imports: Option<Imports<'_>>,
        instantiate: impl FnOnce(&mut Store<HostState>, &Component, &Linker<HostState>) -> wasmtime::Result<B>,
    ) -> Result<Self> {
        let loaded = runtime.load(name, grant)?;
        let (mut store, mut linker) = runtime.store_for(&loaded)?;
        if let Some(imports) = imports {
            imports(&mut linker, store.data_mut()).map_err(|e| call_error(name, e))?;
        }
        let bindings = instantiate(&mut store, &loaded.component, &linker).map_err(|e| call_error(name, e))?;
        Ok(Instance { name, store, bindings })
    }

    /// Calls into the component (one call, or several under one time
    /// limit) where no answer is the component's own error.
    pub fn run<T>(&mut self, work: impl FnOnce(&B, &mut Store<HostState>) -> wasmtime::Result<T>) -> Result<T> {
        arm_deadline(&mut self.store);
        work(&self.bindings, &mut self.store).map_err(|e| call_error(self.name, e))
    }

    /// Calls a function of the component that answers with a value or its
    /// own error.
    pub fn call<T, E>(&mut self, work: impl FnOnce(&B, &mut Store<HostState>) -> wasmtime::Result<std::result::Result<T, E>>) -> std::result::Result<T, CallError<E>> {
        self.run(work).map_err(CallError::Stopped)?.map_err(CallError::Refused)
    }

    /// As [`Instance::call`], for a call expected to wait (e.g. for a user
    /// to approve a device code): `limit` instead of the grant's.
    pub fn call_within<T, E>(
        &mut self,
        limit: Duration,
        work: impl FnOnce(&B, &mut Store<HostState>) -> wasmtime::Result<std::result::Result<T, E>>,
    ) -> std::result::Result<T, CallError<E>> {
        arm_deadline_for(&mut self.store, limit);
        work(&self.bindings, &mut self.store).map_err(|e| CallError::Stopped(call_error(self.name, e)))?.map_err(CallError::Refused)
    }

    /// The host's side of the instance (resources it hands the component).
    pub fn state(&mut self) -> &mut HostState {
        self.store.data_mut()
    }
}
