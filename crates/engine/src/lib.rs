//! The engine between sensors and consumers: the in-process event bus, and the correlation that
//! consumes it — the black book, the jails and the bans they set (`correlator.rs`).
#![forbid(unsafe_code)]

pub mod bans;
pub mod blackbook;
pub mod book_db;
pub mod book_error;
pub mod bus;
pub mod correlator;
pub mod key;
pub mod wake;

pub use blackbook::{BanView, BookRecord, SampleView};
pub use book_error::BookError;
pub use bus::{Bus, BusBuilder, Envelope};
pub use correlator::Correlator;
pub use key::IpKey;
pub use wake::Wake;
