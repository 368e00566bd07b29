//! The `kevlar` binary: parse the command line, run the command, map the outcome to an exit code.
#![forbid(unsafe_code)]

mod cli;
mod commands;

use std::process::ExitCode;

use clap::Parser;

/// Output piped into a reader that stopped early (`kevlar doctor | head`) ends the command quietly,
/// as it would in a C tool, instead of a panic about a broken pipe. (Restoring SIGPIPE's default
/// would need `unsafe`; `println!` reports the closed pipe by panicking, which is caught here.)
fn quiet_on_closed_stdout() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let msg = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if msg.starts_with("failed printing to stdout") && msg.contains("Broken pipe") {
            std::process::exit(0);
        }
        default(info);
    }));
}

fn main() -> ExitCode {
    quiet_on_closed_stdout();
    let cli = cli::Cli::parse();
    match commands::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("kevlar: error: {e:#}");
            ExitCode::from(2)
        }
    }
}
