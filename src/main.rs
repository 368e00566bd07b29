//! The `kevlar` binary: parse the command line, run the command, map the outcome to an exit code.
#![forbid(unsafe_code)]

mod cli;
mod commands;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match commands::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("kevlar: error: {e:#}");
            ExitCode::from(2)
        }
    }
}
