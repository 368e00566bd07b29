//! The configuration reader must answer any text with a Config or a list of errors, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Err(errors) = kevlar_config::parse_str(text, "fuzz.toml") {
            // Every error renders and names the file.
            for e in &errors.0 {
                assert!(e.to_string().starts_with("fuzz.toml"));
            }
        }
    }
});
