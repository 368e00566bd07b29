//! One module per subcommand; `run` dispatches.

mod alerts;
mod audit;
mod audit_watch;
mod blackbook;
mod breach;
mod cert;
mod control;
mod detect;
mod doctor;
mod events;
mod github;
mod headers_check;
mod init;
mod logs;
mod outdated;
pub mod serve;
mod update;
mod validate;

use std::process::ExitCode;

use serde_json::Value;

use crate::cli::{Cli, Command};

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Guard { upstream, common } => serve::guard(common, upstream),
        Command::Run { common, command } => serve::run(common, command),
        Command::Keep { grace_ms, command } => {
            let code = kevlar_supervisor::keeper::keep(std::time::Duration::from_millis(grace_ms), &command);
            Ok(ExitCode::from(u8::try_from(code).unwrap_or(1)))
        }
        Command::Init { path, force } => init::run(&path, force),
        Command::Validate { file } => Ok(validate::run(&file)),
        Command::Events(args) => events::run(args),
        Command::Detect(a) => detect::run(a),
        Command::Audit(a) => audit::run(a),
        Command::Db { command } => audit::db(command),
        Command::Headers { command: crate::cli::HeadersCommand::Check(a) } => headers_check::check(a),
        Command::Doctor(a) => audit::doctor(a),
        Command::Status(a) => control::status(a),
        Command::Dashboard(a) => control::dashboard(a),
        Command::Reload(a) => control::reload(a),
        Command::Restart(a) => control::restart(a),
        Command::Logs(a) => logs::run(a),
        Command::Blackbook { command } => blackbook::run(command),
        Command::Routes(a) => blackbook::routes(a),
        Command::Alerts { command, control } => alerts::run(command, control),
        Command::Breach { command } => breach::run(command),
        Command::Outdated { path, json } => outdated::run(&path, json),
        Command::Update(a) => update::run(a),
        Command::Cert { self_signed: _, out, hosts } => cert::run(&out, &hosts),
    }
}

/// A string field of a JSON document as a terminal may show it: escapes written out, capped at
/// `max` characters; `-` when absent. Every field an outsider can put text into goes through this.
pub(crate) fn shown(v: &Value, max: usize) -> String {
    text(v.as_str(), max)
}

/// Attacker text made safe for a terminal, `-` when absent.
pub(crate) fn text(s: Option<&str>, max: usize) -> String {
    s.map_or_else(|| "-".to_owned(), |s| kevlar_core::text::printable(s, max).into_owned())
}

/// An admin API answer read into its type: a field renamed on one side is an error here, not a
/// silent `-`.
pub(crate) fn typed<T: serde::de::DeserializeOwned>(v: Value, what: &str) -> anyhow::Result<T> {
    serde_json::from_value(v).map_err(|e| anyhow::anyhow!("the admin API's {what} is not what this kevlar reads: {e}"))
}
