//! Events reported through the admin API are read by `SecurityEvent::from_json`; any JSON must
//! give an event or a reason, and an accepted event must survive its own JSON round trip.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) {
        if let Ok(e) = kevlar_core::SecurityEvent::from_json(&v) {
            let back = kevlar_core::SecurityEvent::from_json(&e.to_json()).expect("an accepted event re-reads");
            assert_eq!(back.action, e.action);
        }
    }
});
