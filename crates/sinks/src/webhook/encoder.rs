//! Webhook bodies and their signature.
//!
//! Signature (when `secret` is set): `Kevlar-Signature: t=UNIX,v1=HEX` where
//! `HEX = HMAC-SHA256(secret, "UNIX.BODY")`. A receiver recomputes it over the raw body, compares
//! in constant time and refuses old `t` values (replays).

use kevlar_config::WebhookFormat;
use kevlar_core::SecurityEvent;

use crate::render;

pub fn body(e: &SecurityEvent, format: WebhookFormat) -> Vec<u8> {
    let v = match format {
        WebhookFormat::Json => e.to_json(),
        WebhookFormat::Slack => render::slack(e),
    };
    v.to_string().into_bytes()
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The `Kevlar-Signature` header value for `body` sent at `unix` seconds.
pub fn signature(secret: &str, unix: u64, body: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    let mut ctx = ring::hmac::Context::with_key(&key);
    ctx.update(unix.to_string().as_bytes());
    ctx.update(b".");
    ctx.update(body);
    format!("t={unix},v1={}", hex(ctx.sign().as_ref()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_hmac_sha256_of_time_dot_body() {
        // HMAC-SHA256("key", "1.{}") computed independently (Python: hmac.new(b"key", b"1.{}", "sha256")).
        assert_eq!(
            signature("key", 1, b"{}"),
            "t=1,v1=1ba6b8171186efc613e8bcc0cbdab2748f24984d7c5a84faa2637afa0e40d224"
        );
    }
}
