//! Any text given as a package-lock.json: packages or an error naming the file, never a panic or
//! an unbounded walk.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Err(e) = kevlar_audit::lockfile::npm::parse(text, "fuzz/package-lock.json") {
            assert!(e.to_string().starts_with("fuzz/package-lock.json"));
        }
    }
});
