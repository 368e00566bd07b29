//! `kevlar init`: write the commented example configuration.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Context};

pub fn run(path: &Path, force: bool) -> anyhow::Result<ExitCode> {
    if path.exists() && !force {
        bail!("{} already exists; use --force to overwrite it", path.display());
    }
    std::fs::write(path, kevlar_config::EXAMPLE).with_context(|| format!("cannot write {}", path.display()))?;
    println!(
        "wrote {} — every key is shown with its default; check it with `kevlar validate {}`",
        path.display(),
        path.display()
    );
    Ok(ExitCode::SUCCESS)
}
