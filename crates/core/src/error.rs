//! Errors in words: each error says what failed once and carries its cause as its `source()`;
//! `chain` writes the whole line (`cannot open x: database is locked`) where a plain `{}` would
//! stop at the first link. The binary's top level prints the same chain (`{:#}` of anyhow).

use std::error::Error;

/// The error and each of its causes, joined by `": "`, every link said once (a link whose text is
/// already the end of the previous one is skipped).
pub fn chain(e: &(dyn Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut next = e.source();
    while let Some(cause) = next {
        let text = cause.to_string();
        if !text.is_empty() && !out.ends_with(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        next = cause.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Outer(std::io::Error);
    impl std::fmt::Display for Outer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("cannot open /x")
        }
    }
    impl Error for Outer {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn each_cause_once() {
        let e = Outer(std::io::Error::new(std::io::ErrorKind::NotFound, "No such file or directory"));
        assert_eq!(chain(&e), "cannot open /x: No such file or directory");
        let plain = std::io::Error::other("disk full");
        assert_eq!(chain(&plain), "disk full");
    }
}
