//! Events reported through the admin API are read by `SecurityEvent::from_json` and held to
//! `validate_reported`; any JSON must give an event or a reason, an accepted event must survive
//! its own JSON round trip, and a validated one carries no key Kevlar acts on. Any text made
//! printable (`text::printable`) holds no character that could forge a line, and has a length.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) {
        if let Ok(e) = kevlar_core::SecurityEvent::from_json(&v) {
            let back = kevlar_core::SecurityEvent::from_json(&e.to_json()).expect("an accepted event re-reads");
            assert_eq!(back.action, e.action);
            if let Ok(r) = e.validate_reported() {
                assert!(kevlar_core::event::is_valid_event_id(&r.id));
                assert!(kevlar_core::event::RESERVED_KEVLAR_KEYS.iter().all(|k| !r.kevlar.contains_key(*k)));
            }
        }
    }
    let text = String::from_utf8_lossy(data);
    let max = usize::from(data.first().copied().unwrap_or(0));
    let p = kevlar_core::text::printable(&text, max);
    assert!(!p.chars().any(kevlar_core::text::is_unsafe), "{p:?}");
    assert!(p.chars().count() <= max + 1);
});
