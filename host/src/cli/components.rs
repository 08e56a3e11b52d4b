//! `lakeport components`: what is in this build and what each may reach.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use serde_json::json;
use wasmtime::component::types::ComponentItem;

use super::Output;
use crate::embedded::{allowed_imports, imports_beyond_allowance, EmbeddedComponent, EMBEDDED};
use crate::runtime::Runtime;

#[derive(Args, Debug)]
pub struct ComponentsArgs {
    /// Also write the component files into this directory (for wasmtime,
    /// Python, jco and other hosts).
    #[arg(long, value_name = "DIR")]
    export: Option<PathBuf>,
}

/// What the host grants each component (see runtime::Grant).
fn grant_of(name: &str) -> &'static str {
    match name {
        "sigv4" => "none (pure computation)",
        "oidc" => "HTTP to the profile's issuer hosts",
        "sts" => "HTTP to the profile's sts_endpoint host",
        "transfer" => "HTTP to the profile's s3_endpoint host; the files named on the command line",
        "rucio" => "HTTP to the profile's rucio_host and rucio_auth_host",
        "gateway" => "HTTP to the gateway's issuer and the profile's s3_endpoint and sts_endpoint hosts; its settings through wasi:config/store; a wasi:keyvalue store its instances share (callers' STS keys) (lakeport serve)",
        _ => "none",
    }
}

/// A component's imports, by name: all of them, and those a host must
/// supply functions for (what capabilities are about; type-only interfaces
/// of shared records need nothing).
struct Imports {
    all: Vec<String>,
    functions: Vec<String>,
}

fn imports_of(runtime: &Runtime, c: &EmbeddedComponent) -> Result<(Imports, Vec<String>)> {
    let loaded = runtime.load(c.name, crate::runtime::Grant::compute_only())?;
    let ty = loaded.component.component_type();
    let engine = runtime.engine()?;
    let all: Vec<String> = ty.imports(engine).map(|(n, _)| n.to_string()).collect();
    let functions: Vec<String> = ty
        .imports(engine)
        .filter(|(_, item)| match &item.ty {
            ComponentItem::ComponentInstance(inst) => {
                inst.exports(engine).any(|(_, e)| matches!(e.ty, ComponentItem::ComponentFunc(_) | ComponentItem::Resource(_)))
            }
            ComponentItem::Type(_) => false,
            _ => true,
        })
        .map(|(n, _)| n.to_string())
        .collect();
    let exports: Vec<String> = ty.exports(engine).map(|(n, _)| n.to_string()).collect();
    Ok((Imports { all, functions }, exports))
}

pub fn run(args: ComponentsArgs, output: Output) -> Result<()> {
    let runtime = Runtime::new()?;
    let mut rows = Vec::new();
    for c in EMBEDDED {
        let (imports, exports) = imports_of(&runtime, c)?;
        if let Some(dir) = &args.export {
            std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
            let path = dir.join(format!("{}.wasm", c.name));
            std::fs::write(&path, c.bytes).with_context(|| format!("cannot write {}", path.display()))?;
        }
        rows.push((c, imports, exports));
    }
    match output {
        Output::Json => {
            let doc: Vec<_> = rows
                .iter()
                .map(|(c, imports, exports)| {
                    json!({
                        "name": c.name,
                        "size": c.bytes.len(),
                        "sha256": c.sha256,
                        "world": format!("lakeport:plugins/{}", c.world),
                        "imports": imports.all,
                        "function_imports": imports.functions,
                        "allowed_imports": allowed_imports(c.name),
                        "imports_beyond_allowance": imports_beyond_allowance(c.name, &imports.all),
                        "exports": exports,
                        "grant": grant_of(c.name),
                    })
                })
                .collect();
            println!("{}", serde_json::Value::Array(doc));
        }
        Output::Text => {
            println!("{:<10} {:>10}  {:<64}  {:<34} {:<28} imports", "component", "bytes", "sha256", "world", "grant");
            for (c, imports, _) in &rows {
                let beyond = imports_beyond_allowance(c.name, &imports.all);
                let shown = imports
                    .all
                    .iter()
                    .map(|i| {
                        let note = if beyond.contains(&i.as_str()) {
                            " (beyond its allowance)"
                        } else if imports.functions.contains(i) {
                            ""
                        } else {
                            " (types only)"
                        };
                        format!("{i}{note}")
                    })
                    .collect::<Vec<_>>();
                let shown = if shown.is_empty() { "(none)".to_string() } else { shown.join(", ") };
                println!(
                    "{:<10} {:>10}  {:<64}  {:<34} {:<28} {shown}",
                    c.name,
                    c.bytes.len(),
                    c.sha256,
                    format!("lakeport:plugins/{}", c.world),
                    grant_of(c.name)
                );
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every embedded component imports only what its job needs
    /// (`allowed_imports`): no wasi:cli, terminals or environment that Rust
    /// std would drag in, which every embedding host would have to supply.
    #[test]
    fn each_component_imports_only_its_allowance() {
        let runtime = Runtime::with_cache_dir(None).unwrap();
        let mut beyond = Vec::new();
        for c in EMBEDDED {
            let (imports, _) = imports_of(&runtime, c).unwrap();
            for i in imports_beyond_allowance(c.name, &imports.all) {
                beyond.push(format!("{} imports {i}", c.name));
            }
            if c.name == "sigv4" {
                assert!(imports.functions.is_empty(), "sigv4 must need no host functions: {:?}", imports.functions);
            }
        }
        assert!(beyond.is_empty(), "imports beyond the allowance:\n{}", beyond.join("\n"));
    }

    /// sigv4 is the file other runtimes fetch and load (Python's wasmtime,
    /// jco, wasmtime run): it stays within 150 KB.
    #[test]
    fn sigv4_stays_within_150_kb() {
        let sigv4 = EMBEDDED.iter().find(|c| c.name == "sigv4").unwrap();
        assert!(sigv4.bytes.len() <= 150_000, "sigv4.wasm is {} bytes, over 150 KB", sigv4.bytes.len());
    }
}
