//! Any JSON as an OSV record: an advisory or a reason; matching never panics.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // RustSec's Markdown + TOML form, converted to OSV, then the same checks.
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(Some(v)) = kevlar_audit::rustsec::to_osv(text) {
            let mut warnings = Vec::new();
            if let Ok(a) = kevlar_audit::Advisory::from_json(&v, &mut warnings) {
                let _ = a.affects("crates.io", "p", "0.6.9");
            }
        }
        let _ = kevlar_audit::cvss::base_score(text);
        // npm ranges (declared ranges, the Node.js WG's runtime advisories).
        let (range, version) = text.split_once('\n').unwrap_or((text, "1.2.3"));
        let _ = kevlar_audit::npm_range::satisfies(version, range);
        let _ = kevlar_audit::npm_range::satisfies("1.2.3-beta.1", range);
    }
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) {
        let mut warnings = Vec::new();
        if let Ok(a) = kevlar_audit::Advisory::from_json(&v, &mut warnings) {
            for version in ["0.0.0", "1.2.3", "1.0.0-beta.1", "1.0", "bogus"] {
                let _ = a.affects("npm", "p", version);
                let _ = a.smallest_fix("npm", "p", version);
            }
        }
    }
});
