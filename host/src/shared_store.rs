//! `wasi:keyvalue` (store and atomics) for the gateway: one in-memory map
//! shared by every instance `lakeport serve` runs, so that callers' STS
//! keys, and the leases on fetching them, are seen by all instances. It
//! lives in the server's memory only, never on disk, and is bounded.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use wasmtime::component::Resource;

use crate::runtime::HostState;

mod bindings {
    wasmtime::component::bindgen!({
        inline: "
            package lakeport:host;
            world shared-store {
                import wasi:keyvalue/store@0.2.0-draft;
                import wasi:keyvalue/atomics@0.2.0-draft;
            }
        ",
        path: "../wit/deps/keyvalue",
        with: { "wasi:keyvalue/store.bucket": super::Bucket },
    });
}

use bindings::wasi::keyvalue::{atomics, store};

/// Entries kept at once: callers' keys and their leases (a few hundred
/// bytes each). Beyond it the oldest written make room; a caller whose
/// keys went asks STS again.
const MAX_ENTRIES: usize = 8192;

/// The bucket the gateway opens: `""`, the host's default store.
pub struct Bucket;

#[derive(Default)]
pub struct SharedStore {
    entries: Mutex<Entries>,
}

#[derive(Default)]
struct Entries {
    values: HashMap<String, Vec<u8>>,
    /// Names in the order they were first written, for eviction.
    order: VecDeque<String>,
}

impl Entries {
    fn set(&mut self, key: String, value: Vec<u8>) {
        if !self.values.contains_key(&key) {
            while self.values.len() >= MAX_ENTRIES {
                let Some(oldest) = self.order.pop_front() else { break };
                self.values.remove(&oldest);
            }
            self.order.push_back(key.clone());
        }
        self.values.insert(key, value);
    }

    fn delete(&mut self, key: &str) {
        if self.values.remove(key).is_some() {
            self.order.retain(|k| k != key);
        }
    }
}

impl SharedStore {
    pub fn new() -> SharedStore {
        SharedStore::default()
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, Entries> {
        // A panic elsewhere while holding it leaves plain data behind.
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds `delta` to the counter at `key` (absent: 0) atomically.
    fn increment(&self, key: &str, delta: u64) -> Result<u64, String> {
        let mut entries = self.entries();
        let now = match entries.values.get(key) {
            None => delta,
            Some(bytes) => {
                let current: [u8; 8] = bytes.as_slice().try_into().map_err(|_| format!("the value at {key} is not a counter"))?;
                u64::from_le_bytes(current).wrapping_add(delta)
            }
        };
        entries.set(key.to_string(), now.to_le_bytes().to_vec());
        Ok(now)
    }
}

/// Links `wasi:keyvalue/store`, answered from the grant's shared store.
pub fn link_store(linker: &mut wasmtime::component::Linker<HostState>) -> wasmtime::Result<()> {
    store::add_to_linker::<_, wasmtime::component::HasSelf<HostState>>(linker, |s| s)
}

/// Links `wasi:keyvalue/atomics`, answered from the grant's shared store.
pub fn link_atomics(linker: &mut wasmtime::component::Linker<HostState>) -> wasmtime::Result<()> {
    atomics::add_to_linker::<_, wasmtime::component::HasSelf<HostState>>(linker, |s| s)
}

fn shared(state: &HostState) -> Result<&SharedStore, store::Error> {
    state.shared_store().ok_or(store::Error::AccessDenied)
}

impl store::Host for HostState {
    fn open(&mut self, identifier: String) -> Result<Resource<Bucket>, store::Error> {
        shared(self)?;
        if !identifier.is_empty() {
            return Err(store::Error::NoSuchStore);
        }
        self.table().push(Bucket).map_err(|e| store::Error::Other(e.to_string()))
    }
}

impl store::HostBucket for HostState {
    fn get(&mut self, _: Resource<Bucket>, key: String) -> Result<Option<Vec<u8>>, store::Error> {
        Ok(shared(self)?.entries().values.get(&key).cloned())
    }

    fn set(&mut self, _: Resource<Bucket>, key: String, value: Vec<u8>) -> Result<(), store::Error> {
        shared(self)?.entries().set(key, value);
        Ok(())
    }

    fn delete(&mut self, _: Resource<Bucket>, key: String) -> Result<(), store::Error> {
        shared(self)?.entries().delete(&key);
        Ok(())
    }

    fn exists(&mut self, _: Resource<Bucket>, key: String) -> Result<bool, store::Error> {
        Ok(shared(self)?.entries().values.contains_key(&key))
    }

    fn list_keys(&mut self, _: Resource<Bucket>, _cursor: Option<u64>) -> Result<store::KeyResponse, store::Error> {
        // The names are hashes; listing them serves no caller of the gateway.
        Err(store::Error::AccessDenied)
    }

    fn drop(&mut self, bucket: Resource<Bucket>) -> wasmtime::Result<()> {
        self.table().delete(bucket)?;
        Ok(())
    }
}

impl atomics::Host for HostState {
    fn increment(&mut self, _: Resource<Bucket>, key: String, delta: u64) -> Result<u64, store::Error> {
        shared(self)?.increment(&key, delta).map_err(store::Error::Other)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_add_up_and_a_full_store_drops_the_oldest() {
        let s = SharedStore::new();
        assert_eq!(s.increment("lease", 1), Ok(1));
        assert_eq!(s.increment("lease", 1), Ok(2));
        s.entries().delete("lease");
        assert_eq!(s.increment("lease", 1), Ok(1));
        s.entries().set("keys".into(), b"json".to_vec());
        assert!(s.increment("keys", 1).unwrap_err().contains("not a counter"));

        for i in 0..MAX_ENTRIES + 10 {
            s.entries().set(format!("k{i}"), vec![1]);
        }
        let e = s.entries();
        assert_eq!(e.values.len(), MAX_ENTRIES);
        assert!(!e.values.contains_key("lease") && !e.values.contains_key("k0"));
        assert!(e.values.contains_key(&format!("k{}", MAX_ENTRIES + 9)));
        assert_eq!(e.order.len(), MAX_ENTRIES);
    }
}
