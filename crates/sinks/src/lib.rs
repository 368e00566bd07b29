//! Outputs of the pipeline. For now the access log; the alert and shipping sinks (syslog,
//! Logstash, webhook, email, SMS) join here, one folder each, sharing `util/`.
#![forbid(unsafe_code)]

pub mod access_log;
pub mod util;

pub use access_log::{AccessLogger, AccessRecord, AccessTarget};
