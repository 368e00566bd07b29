//! SQL injection, by tokenizing the value as SQL and looking for the shapes an injection needs.
//!
//! A value is read three ways: as it is (a number or bare word spliced into a query), and as if it
//! sat inside a `'…'` or `"…"` literal (the attacker's first quote closes it). Each reading is
//! tokenized (strings, numbers, keywords, functions, operators, comments, with MySQL's executable
//! `/*! … */` comments opened up) and checked against rules that describe an injection's grammar:
//! a break out of the literal followed by logic, a comment, a stacked statement or a `UNION
//! SELECT`; calls to functions that only attacks use; `SELECT … FROM` with code around it. Plain
//! text — "union was a great select", "D'or 1st parfume" — does not form those shapes.

mod judge;
mod tokens;

use judge::judge;
use tokens::tokenize;

/// Scores a decoded value. Returns the rule that fired, or `None`.
/// Keywords that can carry an injection without any punctuation (`1 union select null`).
fn keywords() -> Option<&'static aho_corasick::AhoCorasick> {
    static K: std::sync::OnceLock<Option<aho_corasick::AhoCorasick>> = std::sync::OnceLock::new();
    K.get_or_init(|| {
        crate::matcher(&[
            "union",
            "select",
            "order",
            "group",
            "having",
            "waitfor",
            "like",
            "between",
            "sounds",
            "exec",
            "drop",
            "insert",
            "delete",
            "update",
            "declare",
            "shutdown",
            "into",
            "procedure",
            "sleep",
            "benchmark",
            "null",
            "true",
            "false",
            "xor",
            "where",
            "limit",
            "case",
            "rlike",
            "regexp",
            "div",
            "mod",
        ])
    })
    .as_ref()
}

pub fn check(value: &str) -> Option<(&'static str, u32)> {
    let s = value.as_bytes();
    if s.len() < 2 || !s.iter().any(|b| !b.is_ascii_alphanumeric()) {
        return None;
    }
    // Words, digits, blanks, commas and full stops form SQL only through a keyword.
    let punct = s.iter().any(|b| !(b.is_ascii_alphanumeric() || matches!(b, b' ' | b',' | b'.' | b'_' | b'\t')));
    if !punct && !keywords().is_none_or(|k| k.is_match(value)) {
        return None;
    }
    let mut toks = Vec::with_capacity(32);
    let mut best: Option<(&'static str, u32)> = None;
    for prefix in [None, Some(b'\''), Some(b'"')] {
        if let Some(q) = prefix {
            if memchr::memchr(q, s).is_none() {
                continue;
            }
        }
        tokenize(prefix, s, &mut toks);
        if let Some((rule, score)) = judge(&toks, prefix) {
            if best.is_none_or(|(_, b)| score > b) {
                best = Some((rule, score));
            }
        }
    }
    best.filter(|(_, s)| *s >= 7)
}

/// The reading an injection was found in and its tokens (`after ': Str Logic Str Cmp Str`), for
/// explaining a finding; `None` when no reading forms one.
pub fn explain(value: &str) -> Option<String> {
    let s = value.as_bytes();
    let mut toks = Vec::with_capacity(32);
    let mut best: Option<(u32, String)> = None;
    for prefix in [None, Some(b'\''), Some(b'"')] {
        tokenize(prefix, s, &mut toks);
        if let Some((_, score)) = judge(&toks, prefix) {
            if best.as_ref().is_none_or(|(b, _)| score > *b) {
                let reading = match prefix {
                    None => "as it is".to_owned(),
                    Some(q) => format!("after {}", q as char),
                };
                let names: Vec<&str> = toks.iter().take(40).map(tokens::name).collect();
                let more = if toks.len() > 40 { " …" } else { "" };
                best = Some((score, format!("{reading}: {}{more}", names.join(" "))));
            }
        }
    }
    best.map(|(_, s)| s)
}

#[cfg(test)]
mod tests {
    use super::check;

    #[test]
    fn explains_the_reading_and_its_tokens() {
        assert_eq!(super::explain("1' or '1'='1").as_deref(), Some("after ': Str Logic Str Cmp OpenStr"));
        assert_eq!(super::explain("1 union select 1,2").as_deref(), Some("as it is: Num Union Select Num Comma Num"));
        assert_eq!(super::explain("hello world"), None);
    }

    #[test]
    fn injections() {
        for s in [
            "1' or '1'='1",
            "' OR 1=1--",
            "admin'--",
            "1 union select 1,2,3",
            "-1 UNION ALL SELECT null,version()--",
            "1; DROP TABLE users",
            "1' AND SLEEP(5)#",
            "1) or benchmark(1000000,md5(1))#",
            "1/*!50000union*/ /*!50000select*/ 1,2",
            "' and extractvalue(1,concat(0x7e,version()))--",
            "1 order by 5--",
            "'; exec master..xp_cmdshell 'ping 10.0.0.1'--",
            "1' waitfor delay '0:0:5'--",
            "x' or 'a'='a",
            "(select(0)from(select(sleep(15)))v)",
            "1 and (select count(*) from information_schema.tables)>0",
            "1union select 1",
        ] {
            assert!(check(s).is_some(), "missed: {s}");
        }
    }

    #[test]
    fn prose_is_not_sql() {
        for s in [
            "union was a great select",
            "D'or 1st parfume",
            "john+or@var.es",
            "Y'ALL COME BACK NOW",
            "I'M AFRAID SO. YOU'RE ENTIRELY BONKERS",
            "rock or pop",
            "24-7-TEAM",
            "TRUE#LAST",
            "O'Reilly and Sons",
            "select your size from the list",
            "3 BY 5 RECIPE CARDS",
            "1/26/11",
            "c/ caridad s/n",
            "alice@example.com",
            "DEAR FINN,--I think it would do; copy should reach us second post",
        ] {
            assert!(check(s).is_none(), "false positive: {s} ({:?})", check(s));
        }
    }
}
