//! `kevlar validate`: report every problem in a configuration file at once.

use std::path::Path;
use std::process::ExitCode;

use kevlar_config::{load_file, Overrides};

pub fn run(file: &Path) -> ExitCode {
    if !file.exists() {
        eprintln!("kevlar: error: {} does not exist (write one with `kevlar init`)", file.display());
        return ExitCode::from(2);
    }
    match load_file(file, &Overrides::default()) {
        Ok(_) => {
            println!("{}: valid", file.display());
            ExitCode::SUCCESS
        }
        Err(errors) => {
            if errors.0.iter().any(|e| e.key == "(file)") {
                eprintln!("{errors}");
                return ExitCode::from(2);
            }
            println!("{errors}");
            println!("{}: {} problem{}", file.display(), errors.0.len(), if errors.0.len() == 1 { "" } else { "s" });
            ExitCode::from(1)
        }
    }
}
