//! The dashboard's inputs: any `Cookie` header, any form body, any stored event (its fields carry
//! attacker text) rendered into the pages. No panic, and no markup from the input: every `<` the
//! input holds reaches the page escaped.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let cut = (0..=text.len() / 3).rev().find(|i| text.is_char_boundary(*i)).unwrap_or(0);
    let (cookie, rest) = text.split_at(cut);
    let doc = serde_json::from_slice::<serde_json::Value>(data).unwrap_or_else(|_| {
        serde_json::json!({
            "event": {"action": "malicious_attack"},
            "message": rest, "url": {"path": rest},
            "kevlar": {"family": "sqli", "location": cookie, "excerpt": rest},
        })
    });
    let html = kevlar_dashboard::fuzzing::inputs(cookie, rest.as_bytes(), &doc);
    assert!(!html.contains("<script"), "markup from the input: {html}");
    assert!(!html.contains("<img"), "markup from the input: {html}");
});
