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
    let mut best = readings(s, &mut toks);
    // Filters that delete comments join what they split: `un/**/ion sel/**/ect`.
    if let Some(joined) = without_comments(s) {
        if let Some((rule, score)) = readings(&joined, &mut toks) {
            if best.is_none_or(|(_, b)| score > b) {
                best = Some((if rule == "union_select" { "comment_split_keywords" } else { rule }, score));
            }
        }
    }
    best.filter(|(_, s)| *s >= 7)
}

/// The best rule of the three readings (as it is, after `'`, after `"`).
fn readings(s: &[u8], toks: &mut Vec<tokens::T>) -> Option<(&'static str, u32)> {
    let mut best: Option<(&'static str, u32)> = None;
    for prefix in [None, Some(b'\''), Some(b'"')] {
        if let Some(q) = prefix {
            if memchr::memchr(q, s).is_none() {
                continue;
            }
        }
        tokenize(prefix, s, toks);
        if let Some((rule, score)) = judge(toks, prefix) {
            // Prose vetoes the weaker shapes only: a `UNION SELECT` followed by a forum post's
            // words is still one.
            if score < 9 && prose(toks, s) {
                continue;
            }
            if best.is_none_or(|(_, b)| score > b) {
                best = Some((rule, score));
            }
        }
    }
    best
}

/// Three bare words in a row (`the union of both`, `are both true`) are not SQL: no statement
/// has them outside a string or a comment, so a reading with them is prose, not a query. The
/// words must be words of a language too: identifiers (`t1`, `rdb$fields`) and SQL's own words
/// (`as`, `asc`, `language`) break the run.
fn prose(t: &[tokens::T], value: &[u8]) -> bool {
    use tokens::T;
    let mut run = 0;
    let tokens_run = t.iter().any(|x| {
        run = if matches!(x, T::Word | T::Literal) { run + 1 } else { 0 };
        run >= 3
    });
    tokens_run && words_run(value)
}

/// SQL's words that the tokenizer takes for bare words: they make a run of words SQL again.
const SQL_WORDS: &[&str] = &[
    "as",
    "asc",
    "desc",
    "all",
    "distinct",
    "table",
    "tables",
    "on",
    "join",
    "inner",
    "outer",
    "left",
    "right",
    "cross",
    "natural",
    "using",
    "set",
    "values",
    "end",
    "else",
    "exists",
    "is",
    "not",
    "and",
    "or",
    "xor",
    "in",
    "like",
    "by",
    "order",
    "group",
    "from",
    "where",
    "select",
    "union",
    "having",
    "limit",
    "offset",
    "into",
    "case",
    "when",
    "then",
    "procedure",
    "function",
    "returns",
    "language",
    "strict",
    "create",
    "replace",
    "drop",
    "insert",
    "update",
    "delete",
    "exec",
    "execute",
    "declare",
    "begin",
    "waitfor",
    "delay",
    "time",
    "char",
    "varchar",
    "int",
    "integer",
    "cast",
    "convert",
    "count",
    "top",
    "dual",
    "with",
    "rownum",
    "over",
    "partition",
    "collate",
    "binary",
    "unsigned",
    "signed",
    "nvarchar",
    "sysname",
    "varchar2",
    "number",
    "trigger",
    "view",
    "index",
    "database",
    "schema",
    "user",
    "column",
    "columns",
    "nowait",
    "for",
    "xml",
    "path",
    "raw",
    "auto",
    "json",
    "only",
    "read",
    "share",
    "mode",
    "lock",
    "if",
    "while",
    "go",
    "print",
    "return",
    "default",
    "primary",
    "key",
    "references",
    "constraint",
    "engine",
    "charset",
    "character",
    "analyse",
    "escape",
    "sounds",
    "rlike",
    "regexp",
    "between",
    "div",
    "mod",
    "some",
    "any",
];

/// Three words of letters in a row, none of them SQL's.
fn words_run(value: &[u8]) -> bool {
    let text = String::from_utf8_lossy(value);
    let mut run = 0;
    for w in text.split([' ', '\t', '\n', '\r', ',', '.']) {
        if w.is_empty() {
            continue;
        }
        let letters = w.chars().all(char::is_alphabetic);
        let sql = SQL_WORDS.iter().any(|k| w.eq_ignore_ascii_case(k));
        run = if letters && !sql { run + 1 } else { 0 };
        if run >= 3 {
            return true;
        }
    }
    false
}

/// The value with its plain `/* … */` comments deleted (not MySQL's executable `/*! … */`),
/// when it has any between two word characters.
fn without_comments(s: &[u8]) -> Option<Vec<u8>> {
    let mut at = memchr::memmem::find(s, b"/*")?;
    let mut out = Vec::with_capacity(s.len());
    let mut from = 0;
    let mut joined = false;
    loop {
        if s.get(at + 2) == Some(&b'!') {
            out.extend_from_slice(&s[from..at + 2]);
            from = at + 2;
        } else {
            let end = memchr::memmem::find(&s[at + 2..], b"*/").map_or(s.len(), |n| at + 2 + n + 2);
            out.extend_from_slice(&s[from..at]);
            joined |= at > 0 && tokens::is_word_byte(s[at - 1]) && s.get(end).is_some_and(|c| tokens::is_word_byte(*c));
            from = end;
        }
        match memchr::memmem::find(&s[from.min(s.len())..], b"/*") {
            Some(n) => at = from + n,
            None => break,
        }
    }
    out.extend_from_slice(&s[from.min(s.len())..]);
    joined.then_some(out)
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
            if score < 9 && prose(&toks, s) {
                continue;
            }
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
    match (best, without_comments(s)) {
        (None, Some(joined)) => explain(&String::from_utf8_lossy(&joined)).map(|r| format!("comments deleted, {r}")),
        (best, _) => best.map(|(_, s)| s),
    }
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
