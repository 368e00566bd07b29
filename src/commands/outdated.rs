//! `kevlar outdated [PATH] [--json]`.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use serde_json::{json, Map, Value};

pub fn run(path: &Path, as_json: bool) -> anyhow::Result<ExitCode> {
    let registries = kevlar_update::Registries::for_project(path);
    let agent = ureq::AgentBuilder::new()
        .timeout(std::time::Duration::from_secs(30))
        .user_agent(concat!("kevlar/", env!("CARGO_PKG_VERSION")))
        .build();
    let list = kevlar_update::outdated(path, &|name| registries.fetch(&agent, name))
        .with_context(|| format!("cannot list the dependencies of {}", path.display()))?;
    let stale: Vec<&kevlar_update::Outdated> = list.iter().filter(|o| o.is_outdated()).collect();
    if as_json {
        let mut m = Map::new();
        for o in &stale {
            m.insert(
                o.name.clone(),
                json!({ "current": o.current, "wanted": o.wanted, "latest": o.latest, "declared": o.declared, "type": o.kind }),
            );
        }
        println!("{}", Value::Object(m));
    } else if stale.is_empty() {
        println!("every direct dependency is current ({} checked)", list.len());
    } else {
        println!("{:<32} {:<12} {:<12} {:<12} TYPE", "PACKAGE", "CURRENT", "WANTED", "LATEST");
        for o in &stale {
            let s = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
            println!("{:<32} {:<12} {:<12} {:<12} {}", o.name, s(&o.current), s(&o.wanted), s(&o.latest), o.kind);
        }
    }
    Ok(if stale.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
