"""Component functions called with their types read once.

`wasmtime.component.Func.__call__` re-reads the function's type from the C
API on every call (each parameter, each case of a result's error variant)
before converting a single value: for `sign-flat` that is most of a call's
cost. This does the same conversions and the same C call with the types
read once. It uses `wasmtime._ffi`, which is not public API: the package
pins `wasmtime` to the version these steps were checked against (see
`Func.__call__` there), and the tests run through it.
"""

import ctypes
import threading
from ctypes import byref, pointer
from typing import Any

import wasmtime
import wasmtime.component as wc
from wasmtime import _ffi as ffi
from wasmtime.component._enter import enter_wasm


# `wasm_byte_vec_new` taking the bytes as they are: one copy in C, where
# wasmtime's own string lowering allocates, builds a ctypes array and copies
# twice. A handle of our own (`dll[...]` makes a new one) so that wasmtime's
# keeps its argument types.
_byte_vec_new = ffi.dll["wasm_byte_vec_new"]
_byte_vec_new.restype = None
_byte_vec_new.argtypes = [ctypes.POINTER(ffi.wasm_byte_vec_t), ctypes.c_size_t, ctypes.c_char_p]
_STRING = ffi.WASMTIME_COMPONENT_STRING


def _lower_string(value: Any, val: Any) -> None:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {type(value).__name__}")
    data = value.encode("utf-8")
    val.kind = _STRING
    _byte_vec_new(byref(val.of.string), len(data), data)


class Call:
    """A component function with its store. Calls are serialised: a store
    runs one call at a time."""

    def __init__(self, store: wasmtime.Store, func: wc.Func, lock: threading.Lock) -> None:
        fty = func.type(store)
        self._store = store
        self._func = func
        self._lock = lock
        self._params = [ty for _, ty in fty.params]
        self._result = fty.result
        # A `result<T, E>`: its cases' types, read once.
        self._ok = self._err = None
        if isinstance(self._result, wc.ResultType):
            self._ok, self._err = self._result.ok, self._result.err

    def __call__(self, *params: Any) -> Any:
        """The value, or for a `result`, `(True, ok)` or `(False, err)`."""
        if len(params) != len(self._params):
            raise TypeError(f"expected {len(self._params)} arguments, got {len(params)}")
        with self._lock:
            return self._call(params)

    def _call(self, params: Any) -> Any:
        store = self._store
        capi = (ffi.wasmtime_component_val_t * len(params))()
        n = 0
        try:
            for ty, value in zip(self._params, params):
                if ty.__class__ is wc.String:
                    _lower_string(value, capi[n])
                else:
                    ty.convert_to_c(store, value, pointer(capi[n]))
                n += 1
            space = ffi.wasmtime_component_val_t()
            out = byref(space) if self._result is not None else None
            enter_wasm(lambda: ffi.wasmtime_component_func_call(byref(self._func._func), store._context(), capi, n, out, 1 if out else 0))
        finally:
            for i in range(n):
                ffi.wasmtime_component_val_delete(byref(capi[i]))
        if self._result is None:
            return None
        if not isinstance(self._result, wc.ResultType):
            return self._result.convert_from_c(space)
        result = space.of.result
        ok = bool(result.is_ok)
        ty = self._ok if ok else self._err
        if ty is None:
            return ok, None
        # As wasmtime's own lifting: convert the boxed case value (which
        # frees its contents), then free the box as a plain value.
        boxed = result.val
        value = ty.convert_from_c(boxed.contents)
        boxed.contents.kind = ffi.WASMTIME_COMPONENT_BOOL
        boxed.contents.of.boolean = False
        ffi.wasmtime_component_val_delete(boxed)
        return ok, value
