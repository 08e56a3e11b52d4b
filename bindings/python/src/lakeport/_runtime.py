"""The engine and the component files, shared by the package's modules."""

import threading
from importlib import resources
from typing import Dict, Optional

import wasmtime
import wasmtime.component as wc

PACKAGE = "lakeport:plugins"
VERSION = "0.1.0"

_lock = threading.Lock()
_engine: Optional[wasmtime.Engine] = None
_components: Dict[str, wc.Component] = {}


def engine() -> wasmtime.Engine:
    global _engine
    with _lock:
        if _engine is None:
            _engine = wasmtime.Engine()
        return _engine


def component(name: str) -> wc.Component:
    """`components/NAME.wasm`, compiled once per process."""
    e = engine()
    with _lock:
        if name not in _components:
            wasm = resources.files(__package__).joinpath("components", f"{name}.wasm").read_bytes()
            _components[name] = wc.Component(e, wasm)
        return _components[name]


def export_func(store: wasmtime.Store, instance: wc.Instance, interface: str, name: str) -> wc.Func:
    """Function `name` (e.g. `sign`, `[method]signer.sign`) of `interface`."""
    full = f"{PACKAGE}/{interface}@{VERSION}"
    index = instance.get_export_index(store, full)
    if index is None:
        raise RuntimeError(f"the component does not export {full}")
    func_index = instance.get_export_index(store, name, index)
    func = instance.get_func(store, func_index) if func_index is not None else None
    if func is None:
        raise RuntimeError(f"{full} has no function {name}")
    return func


def record(**fields) -> wc.Record:
    """A WIT record: an attribute object with WIT's kebab-case names."""
    r = wc.Record()
    for name, value in fields.items():
        setattr(r, name.replace("_", "-"), value)
    return r
