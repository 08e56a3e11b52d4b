//! The wasmtime embedding: one engine per process, components compiled once
//! and cached on disk, and a store per instance with a memory cap and a time
//! limit per call. What each component may reach is decided by its [`Grant`].

use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Result};
use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine, Store, StoreLimits, StoreLimitsBuilder};

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::egress::{Egress, EgressPolicy};
use crate::embedded::{self, EmbeddedComponent};
use crate::log;

/// How often the epoch ticks; time limits are counted in these ticks.
const EPOCH_TICK: Duration = Duration::from_millis(10);

/// What one component instance may use. Everything not granted is absent
/// from its linker, so the component cannot even be instantiated if it
/// imports more than it was granted.
#[derive(Clone)]
pub struct Grant {
    /// Cap on linear memory, per memory.
    pub max_memory_bytes: usize,
    /// Time a single call may take before the instance is stopped (counted
    /// in wall-clock epochs, so time blocked on the network counts too).
    pub time_limit: Duration,
    /// Outgoing HTTP, to the policy's hosts only. With it come the WASI
    /// basics a std component imports (clocks, random, stdio; see
    /// [`http_grant_interface`]); no files, no sockets, no environment.
    pub http: Option<Arc<EgressPolicy>>,
    /// Values the component reads through `wasi:config/store`.
    pub config: Option<Arc<Vec<(String, String)>>>,
    /// A `wasi:keyvalue` store shared by all the instances given this grant.
    pub shared_store: Option<Arc<crate::shared_store::SharedStore>>,
}

impl Grant {
    /// Pure computation: no imports at all.
    pub fn compute_only() -> Self {
        Grant { max_memory_bytes: 256 << 20, time_limit: Duration::from_secs(30), http: None, config: None, shared_store: None }
    }

    /// Outgoing HTTP to the hosts of `policy`, and nothing else.
    pub fn http_to(policy: EgressPolicy) -> Self {
        Grant { http: Some(Arc::new(policy)), ..Self::compute_only() }
    }
}

/// Per-instance state held by the store.
pub struct HostState {
    limits: StoreLimits,
    /// Epoch ticks each call may take (see [`arm_deadline`]).
    deadline_ticks: u64,
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
    egress: Egress,
    config: wasmtime_wasi_config::WasiConfigVariables,
    shared_store: Option<Arc<crate::shared_store::SharedStore>>,
    /// New S3 keys for those a server refused, for a component that signs
    /// with them (transfer); none for the others.
    pub renew_s3_keys: Option<RenewS3Keys>,
}

/// Keys to replace those with the given access key ID, or why there are none.
pub type RenewS3Keys = Box<dyn FnMut(&str) -> std::result::Result<crate::creds::S3Credentials, String> + Send>;

impl HostState {
    /// The instance's resources (files the host grants, HTTP handles).
    pub fn table(&mut self) -> &mut ResourceTable {
        &mut self.table
    }

    /// The `wasi:keyvalue` store its grant shares, if any.
    pub fn shared_store(&self) -> Option<&crate::shared_store::SharedStore> {
        self.shared_store.as_deref()
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl WasiHttpView for HostState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView { ctx: &mut self.http, table: &mut self.table, hooks: &mut self.egress }
    }
}

/// The wasmtime engine, made on first use: commands that answer from a
/// cache (`token get`, `creds`) never start it, nor its epoch ticker.
pub struct Runtime {
    engine: std::sync::OnceLock<Result<Engine, String>>,
    cache_dir: Option<PathBuf>,
    ticker_stop: Arc<AtomicBool>,
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.ticker_stop.store(true, Ordering::Relaxed);
    }
}

/// A compiled component ready to instantiate, with what it is granted.
pub struct Loaded {
    pub component: Component,
    pub info: &'static EmbeddedComponent,
    pub grant: Grant,
}

impl Runtime {
    /// Caches compiled components under `$XDG_CACHE_HOME/lakeport/compiled`.
    pub fn new() -> Result<Self> {
        Self::with_cache_dir(crate::paths::cache_dir().map(|d| d.join("compiled")))
    }

    /// Caches compiled components in `cache_dir` (none: compile every time).
    pub fn with_cache_dir(cache_dir: Option<PathBuf>) -> Result<Self> {
        Ok(Runtime { engine: std::sync::OnceLock::new(), cache_dir, ticker_stop: Arc::new(AtomicBool::new(false)) })
    }

    /// The engine, with epoch interruption driven by a ticker thread.
    pub fn engine(&self) -> Result<&Engine> {
        let made = self.engine.get_or_init(|| {
            let mut config = Config::new();
            config.epoch_interruption(true);
            config.wasm_component_model(true);
            let engine = Engine::new(&config).map_err(|e| format!("creating the WebAssembly engine: {e}"))?;
            let (ticking_engine, stop) = (engine.clone(), self.ticker_stop.clone());
            std::thread::Builder::new()
                .name("epoch-ticker".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(EPOCH_TICK);
                        ticking_engine.increment_epoch();
                    }
                })
                .map_err(|e| format!("starting the epoch ticker: {e}"))?;
            Ok(engine)
        });
        made.as_ref().map_err(|e| anyhow!("{e}"))
    }

    /// Where the compiled form of a component is cached: keyed by the
    /// component's hash and by everything about this engine (wasmtime
    /// version, configuration, CPU features) that makes compiled code valid.
    pub fn cache_path(&self, info: &EmbeddedComponent) -> Result<Option<PathBuf>> {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.engine()?.precompile_compatibility_hash().hash(&mut h);
        let engine_key = h.finish();
        Ok(self.cache_dir.as_ref().map(|d| d.join(format!("{}-{}-{engine_key:016x}.cwasm", info.name, &info.sha256[..16]))))
    }

    /// Loads a component: from the compiled cache when it is there and
    /// valid, otherwise compiling it and filling the cache.
    pub fn load(&self, name: &str, grant: Grant) -> Result<Loaded> {
        let info = embedded::find(name).ok_or_else(|| anyhow!("no component named '{name}' in this build"))?;
        let started = Instant::now();
        let engine = self.engine()?;
        let path = self.cache_path(info)?;
        // Native code is run only from a file nobody else could have written.
        let cached = path.as_ref().and_then(|p| match crate::paths::open_trusted(p) {
            Ok(file) => file,
            Err(e) => {
                log::verbose(format_args!("{name}: ignoring the cached compiled component: {e}; compiling again"));
                None
            }
        });
        if let (Some(path), Some(file)) = (&path, cached) {
            // SAFETY: the file was written by `precompile_component` of an engine with
            // the same compatibility hash (its name says so), and is one only this user
            // (or root) owns and can write, in such a directory.
            match unsafe { deserialize_opened(engine, file) } {
                Ok(component) => {
                    log::verbose(format_args!("{name}: loaded compiled component from cache {} in {:.2?}", path.display(), started.elapsed()));
                    return Ok(Loaded { component, info, grant });
                }
                Err(e) => log::verbose(format_args!("{name}: cached compiled component unusable ({e}); compiling again")),
            }
        }
        let compiled = engine
            .precompile_component(info.bytes)
            .map_err(|e| anyhow!("compiling the {name} component: {e}"))?;
        log::verbose(format_args!("{name}: compiled component in {:.2?}", started.elapsed()));
        if let Some(path) = &path {
            match crate::paths::write_private(path, &compiled) {
                Ok(()) => log::verbose(format_args!("{name}: cached compiled component at {}", path.display())),
                Err(e) => log::verbose(format_args!("{name}: not caching the compiled component ({e})")),
            }
        }
        // SAFETY: these bytes were just produced by this engine.
        let component = unsafe { Component::deserialize(engine, &compiled) }
            .map_err(|e| anyhow!("loading the compiled {name} component: {e}"))?;
        Ok(Loaded { component, info, grant })
    }

    /// A store with the grant's memory cap and time limit, and a linker
    /// holding only what the grant allows.
    pub fn store_for(&self, loaded: &Loaded) -> Result<(Store<HostState>, Linker<HostState>)> {
        Ok((self.store(&loaded.grant)?, self.linker_for(loaded)?))
    }

    /// A store with the grant's memory cap and time limit (the deadline
    /// armed for one call), for an instance of a linker from [`Runtime::linker_for`].
    pub fn store(&self, grant: &Grant) -> Result<Store<HostState>> {
        let limits = StoreLimitsBuilder::new()
            .memory_size(grant.max_memory_bytes)
            .instances(16)
            .tables(64)
            .memories(4)
            .trap_on_grow_failure(true)
            .build();
        // Nothing from the host's environment: no variables, arguments,
        // preopened directories or sockets; stdin is empty, output discarded.
        let wasi = WasiCtx::builder().build();
        let policy = grant.http.clone().unwrap_or_else(|| Arc::new(EgressPolicy::new(Vec::new(), None)));
        let deadline_ticks = (grant.time_limit.as_millis() / EPOCH_TICK.as_millis()).max(1) as u64;
        let config = grant.config.iter().flat_map(|c| c.iter().cloned()).collect();
        let state = HostState {
            limits,
            deadline_ticks,
            wasi,
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            egress: Egress::new(policy),
            config,
            shared_store: grant.shared_store.clone(),
            renew_s3_keys: None,
        };
        let engine = self.engine()?;
        let mut store = Store::new(engine, state);
        store.limiter(|state| &mut state.limits);
        store.epoch_deadline_trap();
        arm_deadline(&mut store);
        Ok(store)
    }

    /// A linker holding exactly the WASI interfaces the component imports,
    /// each of which its grant must allow: a component that asks for more
    /// (files, sockets, or HTTP it was not granted) is refused here, before
    /// it runs. lakeport's own interfaces (`files`, `credential-source`)
    /// are added by the component's wrapper; `types` holds only types.
    pub fn linker_for(&self, loaded: &Loaded) -> Result<Linker<HostState>> {
        let engine = self.engine()?;
        let mut linker = Linker::new(engine);
        for (import, _) in loaded.component.component_type().imports(engine) {
            let interface = import.split('@').next().unwrap_or(import);
            if interface.starts_with("lakeport:plugins/") {
                continue;
            }
            let link = match interface {
                "wasi:config/store" => loaded.grant.config.as_ref().map(|_| link_config as LinkInterface),
                "wasi:keyvalue/store" => loaded.grant.shared_store.as_ref().map(|_| crate::shared_store::link_store as LinkInterface),
                "wasi:keyvalue/atomics" => loaded.grant.shared_store.as_ref().map(|_| crate::shared_store::link_atomics as LinkInterface),
                _ => loaded.grant.http.as_ref().and_then(|_| http_grant_interface(interface)),
            };
            let link = link.ok_or_else(|| {
                anyhow!("the {} component imports {import}, which lakeport does not grant it: it asks for more than its job needs", loaded.info.name)
            })?;
            link(&mut linker).map_err(|e| anyhow!("linking {import}: {e}"))?;
        }
        Ok(linker)
    }
}

/// Loads a compiled component from the very file that was checked: mapped
/// through its descriptor's `/proc/self/fd` link (no copy, and a file put
/// at the same name since is not the one mapped), or read where there is
/// no /proc.
///
/// # Safety
/// As [`Component::deserialize`]: the file holds what `precompile_component`
/// of a compatible engine wrote.
unsafe fn deserialize_opened(engine: &Engine, mut file: std::fs::File) -> wasmtime::Result<Component> {
    use std::os::fd::AsRawFd;
    let by_descriptor = PathBuf::from(format!("/proc/self/fd/{}", file.as_raw_fd()));
    if by_descriptor.exists() {
        // SAFETY: the caller's promise, about the file this link leads to.
        return unsafe { Component::deserialize_file(engine, &by_descriptor) };
    }
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut file, &mut bytes)?;
    // SAFETY: the caller's promise.
    unsafe { Component::deserialize(engine, &bytes) }
}

/// How to link one WASI interface into a component's linker.
type LinkInterface = fn(&mut Linker<HostState>) -> wasmtime::Result<()>;

/// `wasi:config/store`, answering from the grant's values.
fn link_config(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    wasmtime_wasi_config::add_to_linker(linker, |s| wasmtime_wasi_config::WasiConfig::from(&s.config))
}

/// The streams and pollables of a store: its resource table.
struct Table;

impl wasmtime::component::HasData for Table {
    type Data<'a> = &'a mut ResourceTable;
}

/// The WASI interfaces that come with a grant of outgoing HTTP: wasi:http
/// itself, the streams and pollables it speaks in, clocks and random.
/// Never files, sockets, or wasi:cli (stdio, environment, exit): no
/// component imports them (lakeport-no-cli), so a file that does was not
/// built here and is refused.
fn http_grant_interface(interface: &str) -> Option<LinkInterface> {
    use wasmtime_wasi::clocks::WasiClocks;
    use wasmtime_wasi::p2::bindings::{clocks, random, sync};
    use wasmtime_wasi::random::WasiRandom;
    use wasmtime_wasi::clocks::WasiClocksView;
    use wasmtime_wasi_http::p2::bindings::sync::http as wasi_http;
    use wasmtime_wasi_http::WasiHttp;
    let link: LinkInterface = match interface {
        "wasi:http/outgoing-handler" => |l| wasi_http::outgoing_handler::add_to_linker::<_, WasiHttp>(l, HostState::http),
        "wasi:http/types" => |l| wasi_http::types::add_to_linker::<_, WasiHttp>(l, &Default::default(), HostState::http),
        "wasi:io/error" => |l| sync::io::error::add_to_linker::<_, Table>(l, |s| &mut s.table),
        "wasi:io/poll" => |l| sync::io::poll::add_to_linker::<_, Table>(l, |s| &mut s.table),
        "wasi:io/streams" => |l| sync::io::streams::add_to_linker::<_, Table>(l, |s| &mut s.table),
        "wasi:clocks/wall-clock" => |l| clocks::wall_clock::add_to_linker::<_, WasiClocks>(l, HostState::clocks),
        "wasi:clocks/monotonic-clock" => |l| clocks::monotonic_clock::add_to_linker::<_, WasiClocks>(l, HostState::clocks),
        "wasi:random/random" => |l| random::random::add_to_linker::<_, WasiRandom>(l, |s| s.wasi.random()),
        _ => return None,
    };
    Some(link)
}

/// Starts the time limit for one call. Epochs tick with wall-clock time, so
/// the limit is re-armed before every call; an idle instance never expires.
pub fn arm_deadline(store: &mut Store<HostState>) {
    let ticks = store.data().deadline_ticks;
    store.set_epoch_deadline(ticks);
}

/// Like [`arm_deadline`], for a call expected to wait (e.g. for a user to
/// approve a device code): `limit` instead of the grant's.
pub fn arm_deadline_for(store: &mut Store<HostState>, limit: Duration) {
    store.set_epoch_deadline((limit.as_millis() / EPOCH_TICK.as_millis()).max(1) as u64);
}


/// Turns a wasmtime error from a call into one line for the user; a trap
/// (a component bug, the memory cap or the time limit) says so. The wasm
/// backtrace goes to `-v` output only.
pub fn call_error(component: &str, e: wasmtime::Error) -> anyhow::Error {
    log::verbose(format_args!("{component}: {e:?}"));
    let root = e.root_cause().to_string();
    let why = match e.downcast_ref::<wasmtime::Trap>() {
        Some(wasmtime::Trap::Interrupt) => "it ran past its time limit for one call".to_string(),
        _ if root.contains("memory") && (root.contains("limit") || root.contains("grow")) => {
            format!("it reached its memory cap ({root})")
        }
        Some(wasmtime::Trap::UnreachableCodeReached) => "it hit an internal error (a bug: please report it)".to_string(),
        Some(trap) => trap.to_string(),
        None => root.lines().next().unwrap_or_default().to_string(),
    };
    anyhow!("the {component} component was stopped: {why}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn http_grant() -> Grant {
        Grant::http_to(EgressPolicy::new(Vec::new(), None))
    }

    fn instantiate(runtime: &Runtime, loaded: &Loaded) -> Result<()> {
        let (mut store, linker) = runtime.store_for(loaded)?;
        linker.instantiate(&mut store, &loaded.component).map_err(|e| anyhow!("{e:?}"))?;
        Ok(())
    }

    /// A component that imports `interface` (an empty instance) and nothing else.
    fn importing(runtime: &Runtime, interface: &str, grant: Grant) -> Loaded {
        let mut types = wasm_encoder::ComponentTypeSection::new();
        types.instance(&wasm_encoder::InstanceType::new());
        let mut imports = wasm_encoder::ComponentImportSection::new();
        imports.import(interface, wasm_encoder::ComponentTypeRef::Instance(0));
        let mut component = wasm_encoder::Component::new();
        component.section(&types).section(&imports);
        let bytes: &'static [u8] = Box::leak(component.finish().into_boxed_slice());
        let info = Box::leak(Box::new(EmbeddedComponent { name: "made-up", world: "made-up", sha256: "0", bytes }));
        Loaded { component: Component::new(runtime.engine().unwrap(), bytes).unwrap(), info, grant }
    }

    #[test]
    fn each_component_instantiates_with_a_linker_of_only_its_imports() {
        let runtime = Runtime::with_cache_dir(None).unwrap();
        for name in ["sts", "oidc", "rucio"] {
            let loaded = runtime.load(name, http_grant()).unwrap();
            instantiate(&runtime, &loaded).unwrap_or_else(|e| panic!("{name}: {e:#}"));
        }
        let sigv4 = runtime.load("sigv4", Grant::compute_only()).unwrap();
        instantiate(&runtime, &sigv4).unwrap();
        // The linker holds no more than the component imports: lakeport's
        // `files`, which only the transfer wrapper adds, is missing here.
        let transfer = runtime.load("transfer", http_grant()).unwrap();
        let err = instantiate(&runtime, &transfer).unwrap_err();
        assert!(format!("{err:#}").contains("lakeport:plugins/files"), "{err:#}");
        // The gateway reads its settings through wasi:config/store, which
        // only a grant of configuration links.
        let gateway = runtime.load("gateway", Grant { config: Some(Arc::new(Vec::new())), shared_store: Some(Default::default()), ..http_grant() }).unwrap();
        instantiate(&runtime, &gateway).unwrap();
    }

    #[test]
    fn the_gateway_without_a_grant_of_configuration_is_refused() {
        let runtime = Runtime::with_cache_dir(None).unwrap();
        let gateway = runtime.load("gateway", http_grant()).unwrap();
        let err = runtime.store_for(&gateway).err().expect("wasi:config without a grant for it").to_string();
        assert!(err.contains("the gateway component imports wasi:config/store") && err.contains("does not grant it"), "{err}");
    }

    #[test]
    fn a_component_importing_more_than_its_grant_is_refused() {
        let runtime = Runtime::with_cache_dir(None).unwrap();
        let oidc = runtime.load("oidc", Grant::compute_only()).unwrap();
        let err = runtime.store_for(&oidc).err().expect("HTTP without a grant for it").to_string();
        assert!(err.contains("the oidc component imports wasi:") && err.contains("does not grant it"), "{err}");
        for interface in ["wasi:filesystem/types@0.2.12", "wasi:sockets/tcp@0.2.12", "wasi:filesystem/preopens@0.2.12", "wasi:random/insecure-seed@0.2.12", "wasi:cli/stderr@0.2.12", "wasi:cli/environment@0.2.12"] {
            let loaded = importing(&runtime, interface, http_grant());
            let err = runtime.store_for(&loaded).err().unwrap_or_else(|| panic!("{interface} was linked")).to_string();
            assert!(err.contains(interface), "{err}");
        }
        let fine = importing(&runtime, "wasi:clocks/wall-clock@0.2.12", http_grant());
        instantiate(&runtime, &fine).unwrap();
    }
}
