//! The engine between sensors and consumers. For now: the in-process event bus. Correlation
//! windows, the black book and policies join it here.
#![forbid(unsafe_code)]

pub mod bus;
pub mod wake;

pub use bus::{Bus, BusBuilder, Envelope};
pub use wake::Wake;
