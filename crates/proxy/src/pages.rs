//! Kevlar's own answers: plain pages that carry the request id and leak nothing (no upstream
//! address, no error text, no stack).

use bytes::Bytes;

pub fn title(status: u16) -> &'static str {
    match status {
        301 => "Moved Permanently",
        400 => "Bad Request",
        403 => "Forbidden",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Content Too Large",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Error",
    }
}

fn explanation(status: u16) -> &'static str {
    match status {
        400 => "The request could not be understood.",
        403 => "This request was refused.",
        405 => "This method is not served here.",
        408 => "The request took too long to arrive.",
        413 => "The request body is larger than this site accepts.",
        429 => "Too many requests; please slow down.",
        431 => "The request headers are larger than this site accepts.",
        502 => "The application is not answering right now. Please try again in a moment.",
        503 => "The application is starting. Please try again in a moment.",
        504 => "The application took too long to answer. Please try again in a moment.",
        _ => "Something went wrong.",
    }
}

/// The HTML page for `status`, naming the request id so a user can quote it.
pub fn page(status: u16, request_id: &str) -> Bytes {
    let t = title(status);
    Bytes::from(format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{status} {t}</title></head>\n<body><h1>{status} {t}</h1>\n<p>{}</p>\n<p>Request id: <code>{request_id}</code></p></body></html>\n",
        explanation(status)
    ))
}
