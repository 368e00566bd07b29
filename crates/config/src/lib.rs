//! Kevlar's configuration: a TOML file read with its spans, checked key by key, turned into a
//! validated [`Config`]. Every problem is collected and reported at once as
//! `file:line: key: what is wrong`; an unknown key is an error, never a warning, because in a
//! security tool a typo must not silently disable a protection.
#![forbid(unsafe_code)]

mod error;
mod model;
mod model_alerts;
mod model_logins;
mod read;
mod read_alerts;
mod read_app;
mod read_headers;
mod read_logins;
mod read_shield;
mod reader;
pub mod units;

pub use error::{ConfigError, ConfigErrors};
pub use model::*;
pub use read::{defaults_with, load_file, parse_str, Overrides};
pub use read_shield::FAMILIES;

/// The commented example configuration; `kevlar init` writes it, and it documents every key.
pub const EXAMPLE: &str = include_str!("../../../kevlar.example.toml");
