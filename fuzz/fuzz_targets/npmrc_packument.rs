//! What `kevlar outdated` and `kevlar update` read from outside: `.npmrc` text and a registry's
//! package document. Neither may panic; a registry lookup for any name gives a URL ending in `/`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let r = kevlar_update::Registries::parse(text);
        assert!(r.registry_for("@scope/name").ends_with('/') && r.registry_for("left-pad").ends_with('/'));
    }
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) {
        let p = kevlar_update::Packument::parse(&v);
        let _ = p.wanted("^1.0.0");
        let _ = p.wanted(">=0");
    }
});
