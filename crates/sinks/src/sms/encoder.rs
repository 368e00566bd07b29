//! The Twilio Messages API request: `POST {base}/2010-04-01/Accounts/{SID}/Messages.json`,
//! form fields `To`, `From`, `Body`, HTTP Basic auth with the account SID and auth token.

use kevlar_core::SecurityEvent;

use crate::render;

/// Two concatenated GSM-7 segments (153 characters each); the text is kept to GSM-safe ASCII.
pub const MAX_TEXT: usize = 306;

pub fn path(account_sid: &str) -> String {
    format!("/2010-04-01/Accounts/{account_sid}/Messages.json")
}

pub fn text(e: &SecurityEvent) -> String {
    render::short(e, MAX_TEXT)
}
