//! `lakeport components`: what is in this build and what each may reach.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use serde_json::json;
use wasmtime::component::types::ComponentItem;

use super::Output;
use crate::embedded::EMBEDDED;
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
        "gateway" => "HTTP to the gateway's issuer and the profile's s3_endpoint and sts_endpoint hosts; its settings through wasi:config/store (lakeport serve)",
        _ => "none",
    }
}

pub fn run(args: ComponentsArgs, output: Output) -> Result<()> {
    let runtime = Runtime::new()?;
    let mut rows = Vec::new();
    for c in EMBEDDED {
        let loaded = runtime.load(c.name, crate::runtime::Grant::compute_only())?;
        let ty = loaded.component.component_type();
        let engine = runtime.engine()?;
        let imports: Vec<String> = ty.imports(engine).map(|(n, _)| n.to_string()).collect();
        // Imports a host must supply functions for: what capabilities are
        // about. Type-only interfaces (shared records) need nothing.
        let function_imports: Vec<String> = ty
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
        if let Some(dir) = &args.export {
            std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
            let path = dir.join(format!("{}.wasm", c.name));
            std::fs::write(&path, c.bytes).with_context(|| format!("cannot write {}", path.display()))?;
        }
        rows.push((c, imports, function_imports, exports));
    }
    match output {
        Output::Json => {
            let doc: Vec<_> = rows
                .iter()
                .map(|(c, imports, function_imports, exports)| {
                    json!({
                        "name": c.name,
                        "size": c.bytes.len(),
                        "sha256": c.sha256,
                        "world": format!("lakeport:plugins/{}", c.world),
                        "imports": imports,
                        "function_imports": function_imports,
                        "exports": exports,
                        "grant": grant_of(c.name),
                    })
                })
                .collect();
            println!("{}", serde_json::Value::Array(doc));
        }
        Output::Text => {
            println!("{:<10} {:>10}  {:<34} {:<28} imports", "component", "bytes", "world", "grant");
            for (c, imports, function_imports, _) in &rows {
                let imports = imports
                    .iter()
                    .map(|i| if function_imports.contains(i) { i.clone() } else { format!("{i} (types only)") })
                    .collect::<Vec<_>>();
                let imports = if imports.is_empty() { "(none)".to_string() } else { imports.join(", ") };
                println!("{:<10} {:>10}  {:<34} {:<28} {imports}", c.name, c.bytes.len(), format!("lakeport:plugins/{}", c.world), grant_of(c.name));
            }
        }
    }
    Ok(())
}
