//! Rust std on wasm32-wasip2 links a few C library calls into every
//! component, even one that never prints: its panic hook writes the message
//! to stderr (`write`, `writev`) after reading `RUST_BACKTRACE` (`getenv`).
//! wasi-libc implements those over wasi:cli (stdin, stdout, stderr, the
//! five terminal interfaces, environment and exit), so every host would
//! have to provide all of it, and every sandbox grant it.
//!
//! This crate defines those three symbols itself. The linker takes a
//! definition from the component before searching wasi-libc, so wasi-libc's
//! versions, and the wasi:cli imports behind them, are never linked. A
//! component links it with `use lakeport_no_cli as _;`.
//!
//! What is lost: nothing a lakeport host showed. Its components ran with an
//! empty WASI context (no variables, output discarded); a panic still ends
//! in a trap, which the host reports with the wasm backtrace under `-v`.

#![no_std]
#![cfg(all(target_arch = "wasm32", target_os = "wasi"))]

use core::ffi::{c_char, c_int};

/// POSIX `struct iovec`.
#[repr(C)]
pub struct IoVec {
    base: *const u8,
    len: usize,
}

/// Output has nowhere to go: report it written, as a discarding stream
/// would, so std's writers never retry or fail.
#[unsafe(no_mangle)]
pub extern "C" fn write(_fd: c_int, _buf: *const u8, len: usize) -> isize {
    len as isize
}

/// As [`write`], for each buffer.
///
/// # Safety
/// `iov` points at `count` valid `IoVec`s (the C contract of `writev`).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn writev(_fd: c_int, iov: *const IoVec, count: c_int) -> isize {
    let mut total = 0usize;
    for i in 0..count.max(0) as usize {
        // SAFETY: the caller passes `count` valid entries.
        total = total.saturating_add(unsafe { (*iov.add(i)).len });
    }
    total as isize
}

/// No environment: every variable is unset.
#[unsafe(no_mangle)]
pub extern "C" fn getenv(_name: *const c_char) -> *mut c_char {
    core::ptr::null_mut()
}
