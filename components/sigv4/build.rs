// The no_std component still needs memcmp & co., which the wasm32-wasip2
// target expects from wasi-libc; link its (import-free) libc.a for them.
fn main() {
    let wasm = std::env::var("CARGO_CFG_TARGET_ARCH").is_ok_and(|a| a == "wasm32");
    if wasm && std::env::var_os("CARGO_FEATURE_COMPONENT").is_some() {
        println!("cargo:rustc-link-lib=c");
    }
}
