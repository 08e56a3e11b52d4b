//! Builds lakeport's components for wasm32-wasip2 and embeds them in the
//! host, so a plain `cargo build` / `cargo test` needs no manual step.
//!
//! Each component gets a target directory of its own
//! (target/components/NAME): the outer cargo holds the lock on the host's,
//! and the wasm artifacts are shared between debug and release host builds.

use std::env;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

/// (component name, crate, WIT world, the interface it must export)
const COMPONENTS: &[(&str, &str, &str, &str)] = &[
    ("sigv4", "lakeport-sigv4", "sigv4-component", "lakeport:plugins/sigv4@"),
    ("oidc", "lakeport-oidc", "oidc-component", "lakeport:plugins/oidc@"),
    ("sts", "lakeport-sts", "sts-component", "lakeport:plugins/sts@"),
    ("transfer", "lakeport-transfer", "transfer-component", "lakeport:plugins/transfer@"),
    ("rucio", "lakeport-rucio", "rucio-component", "lakeport:plugins/rucio@"),
    ("gateway", "lakeport-gateway", "gateway-component", "wasi:http/incoming-handler@"),
];

fn main() {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let workspace = manifest_dir.parent().unwrap().to_path_buf();
    let out_dir = PathBuf::from(env::var("OUT_DIR").unwrap());
    println!("cargo:rerun-if-changed={}", workspace.join("components").display());
    println!("cargo:rerun-if-changed={}", workspace.join("wit").display());
    println!("cargo:rerun-if-changed={}", workspace.join("Cargo.lock").display());
    // The components' build profile (`[profile.component]`) lives here.
    println!("cargo:rerun-if-changed={}", workspace.join("Cargo.toml").display());
    println!("cargo:rerun-if-env-changed=LAKEPORT_COMPONENT_DIR");
    println!("cargo:rerun-if-env-changed=LAKEPORT_PIE");
    println!("cargo:rerun-if-env-changed=LAKEPORT_COMPONENT_TARGET_DIR");

    // `lakeport creds` and `token get` run once per awscli/rclone/restic
    // start (credential_process), so start-up time is the product. As a PIE
    // the 27 MB binary spends about a third of a cached answer applying 31k
    // relocations and faulting in the pages they touch; linked at a fixed
    // address it does not (the choice rclone and restic, Go binaries, make
    // too). Libraries, heap and stack stay randomised. LAKEPORT_PIE=1 keeps
    // a PIE, for packagers whose policy requires one.
    let linux_gnu = env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") && env::var("CARGO_CFG_TARGET_ENV").as_deref() == Ok("gnu");
    if linux_gnu && env::var_os("LAKEPORT_PIE").is_none_or(|v| v.is_empty() || v == "0") {
        println!("cargo:rustc-link-arg-bin=lakeport=-no-pie");
    }

    // LAKEPORT_COMPONENT_TARGET_DIR puts the component builds elsewhere
    // (`./dev reproducible` builds them from scratch there, while the
    // host's own dependencies come from the usual target directory).
    let target_dir = match (env::var_os("LAKEPORT_COMPONENT_TARGET_DIR").filter(|d| !d.is_empty()), env::var_os("CARGO_TARGET_DIR")) {
        (Some(dir), _) => PathBuf::from(dir),
        (None, Some(dir)) => PathBuf::from(dir).join("components"),
        (None, None) => workspace.join("target").join("components"),
    };
    // Prebuilt components (e.g. from a release pipeline) skip the nested build.
    let prebuilt = env::var_os("LAKEPORT_COMPONENT_DIR").map(PathBuf::from);
    if prebuilt.is_none() {
        check_wasm_target();
    }

    let mut table = String::from("pub static EMBEDDED: &[EmbeddedComponent] = &[\n");
    for (name, krate, world, export) in COMPONENTS {
        // Each component has a target directory of its own: a component
        // that links another's crate (transfer links sigv4) builds that crate
        // as a plain library under the same file name, which cargo would
        // then take for the component.
        let artifacts = match &prebuilt {
            Some(dir) => dir.clone(),
            None => {
                let dir = target_dir.join(name);
                build_component(&workspace, &dir, krate);
                dir.join("wasm32-wasip2").join("component")
            }
        };
        let file = artifacts.join(format!("{}.wasm", krate.replace('-', "_")));
        let bytes = std::fs::read(&file).unwrap_or_else(|e| panic!("reading {}: {e}", file.display()));
        // A library built as a dependency has the same file name but no
        // exports; embedding it would fail only when the command runs.
        if !bytes.windows(export.len()).any(|w| w == export.as_bytes()) {
            panic!("{} does not export {export}*: it is not the {name} component", file.display());
        }
        let digest = Sha256::digest(&bytes);
        let sha: String = digest.iter().fold(String::new(), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        });
        let copy = out_dir.join(format!("{name}.wasm"));
        std::fs::write(&copy, &bytes).unwrap();
        writeln!(
            table,
            "    EmbeddedComponent {{ name: {name:?}, world: {world:?}, sha256: {sha:?}, bytes: include_bytes!({:?}) }},",
            copy.display()
        )
        .unwrap();
    }
    table.push_str("];\n");
    std::fs::write(out_dir.join("embedded_components.rs"), table).unwrap();
}

/// One cargo invocation per component: building them together would unify
/// dependency features, and pull std into the no_std sigv4 component.
fn build_component(workspace: &Path, target_dir: &Path, krate: &str) {
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(&cargo);
    cmd.current_dir(workspace)
        .args(["build", "--locked", "--target", "wasm32-wasip2", "--profile", "component", "--features", "component", "-p", krate])
        .arg("--target-dir")
        .arg(target_dir);
    // Flags meant for the host build must not leak into the wasm build.
    for var in ["CARGO_ENCODED_RUSTFLAGS", "RUSTFLAGS", "CARGO_BUILD_RUSTFLAGS", "CARGO_TARGET_DIR", "CARGO_BUILD_TARGET", "RUSTC_WORKSPACE_WRAPPER", "CARGO_LLVM_COV", "CARGO_PRIMARY_PACKAGE"] {
        cmd.env_remove(var);
    }
    cmd.env("CARGO_ENCODED_RUSTFLAGS", reproducible_rustflags(workspace, target_dir));
    let status = cmd.status().expect("running cargo to build the components");
    if !status.success() {
        panic!("building the {krate} component for wasm32-wasip2 failed (see the errors above)");
    }
}

/// Reproducible components: the same bytes whatever directory the checkout,
/// the target directory and Cargo's home are in. Panic locations name source
/// files: the workspace's crates by relative path already, dependencies by
/// their path under Cargo's home, which is mapped to a fixed name (as are
/// the other two, should a path of theirs ever be embedded). Rust's own
/// library paths are fixed (`/rustc/<commit>`) in the distributed std, and
/// these flags do not enter the symbol hashes.
fn reproducible_rustflags(workspace: &Path, target_dir: &Path) -> String {
    let cargo_home = env::var_os("CARGO_HOME").map(PathBuf::from).or_else(|| env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")));
    let mut maps = vec![(workspace.to_path_buf(), "/lakeport"), (target_dir.to_path_buf(), "/lakeport-target")];
    if let Some(home) = cargo_home {
        maps.push((home, "/cargo"));
    }
    maps.iter().map(|(from, to)| format!("--remap-path-prefix={}={to}", from.display())).collect::<Vec<_>>().join("\x1f")
}

fn check_wasm_target() {
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let sysroot = Command::new(rustc).args(["--print", "sysroot"]).output().expect("running rustc");
    let sysroot = PathBuf::from(String::from_utf8_lossy(&sysroot.stdout).trim());
    if !sysroot.join("lib/rustlib/wasm32-wasip2").exists() {
        panic!(
            "the wasm32-wasip2 target is not installed for this toolchain; run: rustup target add wasm32-wasip2 --toolchain {}",
            env::var("RUSTUP_TOOLCHAIN").unwrap_or_else(|_| "1.95.0".into())
        );
    }
}
