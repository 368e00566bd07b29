//! Shared plumbing for sinks.

pub mod rotate;
