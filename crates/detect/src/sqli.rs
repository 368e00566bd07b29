//! SQL injection, by tokenizing the value as SQL and looking for the shapes an injection needs.
//!
//! A value is read three ways: as it is (a number or bare word spliced into a query), and as if it
//! sat inside a `'…'` or `"…"` literal (the attacker's first quote closes it). Each reading is
//! tokenized (strings, numbers, keywords, functions, operators, comments, with MySQL's executable
//! `/*! … */` comments opened up) and checked against rules that describe an injection's grammar:
//! a break out of the literal followed by logic, a comment, a stacked statement or a `UNION
//! SELECT`; calls to functions that only attacks use; `SELECT … FROM` with code around it. Plain
//! text — "union was a great select", "D'or 1st parfume" — does not form those shapes.

/// A token class. Keywords are grouped by the role they play in an injection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum T {
    /// A string literal; `closed` when its closing quote is in the value.
    Str {
        closed: bool,
    },
    Num,
    /// A bare word that is not a keyword.
    Word,
    Union,
    Select,
    /// A statement that starts a new query: insert, drop, exec, declare, shutdown …
    Stmt,
    /// from, where, having, limit, into, …
    Clause,
    /// order / group (before `by`).
    OrderGroup,
    By,
    From,
    Logic,
    /// like, rlike, regexp, between, is, in, sounds, div, mod …
    OpWord,
    /// null, true, false
    Literal,
    /// A function call: a word right before `(`. `danger` for functions only attacks use.
    Func {
        danger: bool,
        common: bool,
    },
    /// `@var`, `@@version`
    Var {
        system: bool,
    },
    Cmp,
    Op,
    LParen,
    RParen,
    Comma,
    Semi,
    Comment,
    Dot,
    /// `outfile` / `dumpfile`: writing files from SQL.
    Outfile,
    Case,
    When,
    Then,
    /// `waitfor` (for `waitfor delay`).
    Waitfor,
    Other,
}

/// A tokenized reading. Bounded: long values are cut to [`MAX_TOKENS`] tokens.
const MAX_TOKENS: usize = 256;

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80
}

fn classify_word(w: &[u8]) -> T {
    let mut buf = [0u8; 24];
    if w.len() > buf.len() {
        return T::Word;
    }
    for (i, c) in w.iter().enumerate() {
        buf[i] = c.to_ascii_lowercase();
    }
    match &buf[..w.len()] {
        b"union" | b"intersect" | b"except" | b"minus" => T::Union,
        b"select" => T::Select,
        b"insert" | b"update" | b"delete" | b"drop" | b"exec" | b"execute" | b"declare" | b"create" | b"alter"
        | b"truncate" | b"shutdown" | b"grant" | b"revoke" | b"merge" | b"call" | b"handler" | b"rename" | b"begin"
        | b"load" | b"xp_cmdshell" | b"sp_executesql" | b"sp_password" | b"dbms_lock" | b"openrowset"
        | b"opendatasource" | b"bulk" | b"backup" | b"restore" | b"kill" | b"goto" => T::Stmt,
        b"outfile" | b"dumpfile" => T::Outfile,
        b"case" => T::Case,
        b"when" => T::When,
        b"then" => T::Then,
        b"waitfor" => T::Waitfor,
        b"where" | b"having" | b"limit" | b"offset" | b"into" | b"values" | b"procedure" | b"join" | b"else"
        | b"end" | b"top" | b"distinct" | b"collate" | b"analyse" | b"fetch" | b"rownum" | b"delay"
        | b"waitfor_time" | b"sleep_ms" | b"table" => T::Clause,
        b"from" => T::From,
        b"order" | b"group" => T::OrderGroup,
        b"by" => T::By,
        b"and" | b"or" | b"xor" | b"not" | b"eqv" | b"imp" => T::Logic,
        b"like" | b"rlike" | b"regexp" | b"between" | b"is" | b"in" | b"sounds" | b"div" | b"mod" | b"glob"
        | b"match" | b"against" | b"escape" | b"binary" | b"ilike" | b"similar" => T::OpWord,
        b"null" | b"true" | b"false" | b"unknown" => T::Literal,
        // Stored procedures attacks call: xp_cmdshell, sp_addlogin, sp_add_job …
        w if w.len() > 3 && (w.starts_with(b"xp_") || w.starts_with(b"sp_")) => T::Stmt,
        _ => T::Word,
    }
}

fn classify_func(w: &[u8]) -> T {
    let mut buf = [0u8; 40];
    // `master..xp_cmdshell(` / `dbms_pipe.receive_message(`: the last dotted part names it.
    let w = match w.iter().rposition(|c| *c == b'.') {
        Some(i) => &w[i + 1..],
        None => w,
    };
    if w.len() > buf.len() {
        return T::Func { danger: false, common: false };
    }
    for (i, c) in w.iter().enumerate() {
        buf[i] = c.to_ascii_lowercase();
    }
    let name = &buf[..w.len()];
    let danger = matches!(
        name,
        b"sleep"
            | b"benchmark"
            | b"pg_sleep"
            | b"load_file"
            | b"extractvalue"
            | b"updatexml"
            | b"xp_cmdshell"
            | b"receive_message"
            | b"get_host_address"
            | b"get_host_name"
            | b"request"
            | b"sys_eval"
            | b"sys_exec"
            | b"randomblob"
            | b"name_const"
            | b"geometrycollection"
            | b"multipoint"
            | b"polygon"
            | b"multipolygon"
            | b"linestring"
            | b"multilinestring"
            | b"exp"
            | b"dbms_pipe"
            | b"sleep_ms"
            | b"exec"
            | b"execute"
            | b"pg_read_file"
            | b"pg_ls_dir"
            | b"lo_import"
            | b"xmltype"
            | b"ctxsys"
            | b"drithsx"
            | b"utl_http"
            | b"utl_inaddr"
            | b"openrowset"
            | b"opendatasource"
            | b"sp_executesql"
            | b"sp_oacreate"
            | b"gtid_subset"
            | b"json_keys"
            | b"st_latfromgeohash"
            | b"st_longfromgeohash"
            | b"st_pointfromgeohash"
            | b"make_set"
            | b"elt"
            | b"updatexml1"
    );
    let common = matches!(
        name,
        b"char"
            | b"chr"
            | b"nchar"
            | b"concat"
            | b"concat_ws"
            | b"group_concat"
            | b"string_agg"
            | b"unhex"
            | b"hex"
            | b"ascii"
            | b"ord"
            | b"substring"
            | b"substr"
            | b"mid"
            | b"left"
            | b"right"
            | b"version"
            | b"database"
            | b"user"
            | b"current_user"
            | b"session_user"
            | b"system_user"
            | b"schema"
            | b"db_name"
            | b"user_name"
            | b"if"
            | b"ifnull"
            | b"isnull"
            | b"nullif"
            | b"coalesce"
            | b"iif"
            | b"cast"
            | b"convert"
            | b"count"
            | b"md5"
            | b"sha1"
            | b"rand"
            | b"floor"
            | b"length"
            | b"len"
            | b"instr"
            | b"locate"
            | b"position"
            | b"row"
            | b"json_extract"
            | b"json_depth"
            | b"json_length"
            | b"xmlelement"
            | b"regexp_like"
            | b"regexp_substring"
            | b"to_char"
            | b"upper"
            | b"lower"
            | b"reverse"
            | b"repeat"
            | b"space"
            | b"waitfor"
            | b"case"
            | b"bin"
            | b"oct"
            | b"conv"
            | b"load_extension"
            | b"unicode"
            | b"soundex"
            | b"lpad"
            | b"rpad"
            | b"trim"
            | b"cot"
            | b"abs"
            | b"sign"
            | b"pi"
            | b"now"
            | b"sysdate"
            | b"current_database"
            | b"getdate"
            | b"sqlite_version"
            | b"@@version"
    );
    T::Func { danger, common }
}

/// Tokenizes `prefix` followed by `s`. `prefix` is empty or a single quote character.
fn tokenize(prefix: Option<u8>, s: &[u8], out: &mut Vec<T>) {
    out.clear();
    let mut i = 0;
    // The opening quote of the assumed context.
    if let Some(q) = prefix {
        let (closed, next) = scan_string(s, 0, q);
        out.push(T::Str { closed });
        i = next;
    }
    while i < s.len() && out.len() < MAX_TOKENS {
        let b = s[i];
        match b {
            b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c | 0xa0 => {
                i += 1;
            }
            b'\'' | b'"' | b'`' => {
                let (closed, next) = scan_string(s, i + 1, b);
                out.push(if b == b'`' { T::Word } else { T::Str { closed } });
                i = next;
            }
            b'#' => {
                out.push(T::Comment);
                i = s.len();
            }
            b'-' if s.get(i + 1) == Some(&b'-') => {
                out.push(T::Comment);
                // `--` runs to the end of the line.
                i = match memchr::memchr(b'\n', &s[i..]) {
                    Some(n) => i + n + 1,
                    None => s.len(),
                };
            }
            b'/' if s.get(i + 1) == Some(&b'*') => {
                if s.get(i + 2) == Some(&b'!') {
                    // MySQL executes the inside of `/*! … */` (after an optional version number).
                    i += 3;
                    while i < s.len() && s[i].is_ascii_digit() {
                        i += 1;
                    }
                    continue;
                }
                out.push(T::Comment);
                i = match memchr::memmem::find(&s[i + 2..], b"*/") {
                    Some(n) => i + 2 + n + 2,
                    None => s.len(),
                };
            }
            b'*' if s.get(i + 1) == Some(&b'/') => {
                // The end of an executable comment.
                i += 2;
            }
            b'0'..=b'9' => i = scan_number(s, i, out),
            b'.' if s.get(i + 1).is_some_and(u8::is_ascii_digit) => i = scan_number(s, i, out),
            b'@' => {
                let system = s.get(i + 1) == Some(&b'@');
                let mut j = i + if system { 2 } else { 1 };
                while j < s.len() && (is_word_byte(s[j]) || s[j] == b'.') {
                    j += 1;
                }
                out.push(T::Var { system });
                i = j.max(i + 1);
            }
            b'(' => {
                out.push(T::LParen);
                i += 1;
            }
            b')' => {
                out.push(T::RParen);
                i += 1;
            }
            b',' => {
                out.push(T::Comma);
                i += 1;
            }
            b';' => {
                out.push(T::Semi);
                i += 1;
            }
            b'.' => {
                out.push(T::Dot);
                i += 1;
            }
            b'=' | b'<' | b'>' | b'!' | b':' => {
                let mut j = i + 1;
                while j < s.len() && matches!(s[j], b'=' | b'<' | b'>' | b'!') && j - i < 3 {
                    j += 1;
                }
                // `:` alone is not an operator (`:=` is).
                if b == b':' && j == i + 1 {
                    out.push(T::Other);
                } else if b == b'!' && j == i + 1 {
                    out.push(T::Logic);
                } else {
                    out.push(T::Cmp);
                }
                i = j;
            }
            b'|' if s.get(i + 1) == Some(&b'|') => {
                out.push(T::Logic);
                i += 2;
            }
            b'&' if s.get(i + 1) == Some(&b'&') => {
                out.push(T::Logic);
                i += 2;
            }
            b'+' | b'-' | b'*' | b'/' | b'%' | b'^' | b'|' | b'&' | b'~' => {
                out.push(T::Op);
                i += 1;
            }
            _ if is_word_byte(b) => i = scan_word(s, i, out),
            _ => {
                out.push(T::Other);
                i += 1;
            }
        }
    }
}

/// Scans a literal opened by `q` from `start`; returns whether it closed and where scanning goes on.
fn scan_string(s: &[u8], start: usize, q: u8) -> (bool, usize) {
    let mut i = start;
    while i < s.len() {
        let c = s[i];
        if c == b'\\' && q != b'`' {
            i += 2;
            continue;
        }
        if c == q {
            if s.get(i + 1) == Some(&q) {
                i += 2;
                continue;
            }
            return (true, i + 1);
        }
        i += 1;
    }
    (false, s.len())
}

fn scan_number(s: &[u8], start: usize, out: &mut Vec<T>) -> usize {
    let mut i = start;
    if s[i] == b'0' && matches!(s.get(i + 1), Some(b'x') | Some(b'X') | Some(b'b') | Some(b'B')) {
        i += 2;
        while i < s.len() && s[i].is_ascii_hexdigit() {
            i += 1;
        }
    } else {
        while i < s.len() && (s[i].is_ascii_digit() || s[i] == b'.') {
            i += 1;
        }
        if i < s.len() && (s[i] == b'e' || s[i] == b'E') {
            let mut j = i + 1;
            if j < s.len() && (s[j] == b'+' || s[j] == b'-') {
                j += 1;
            }
            if j < s.len() && s[j].is_ascii_digit() {
                i = j;
                while i < s.len() && s[i].is_ascii_digit() {
                    i += 1;
                }
            }
        }
    }
    if i < s.len() && is_word_byte(s[i]) {
        // `1union`, `1and`: MySQL reads a keyword right after a number. Anything else (`1st`,
        // `2ND-ANNIVERSARY`) is a word.
        let mut j = i;
        while j < s.len() && is_word_byte(s[j]) {
            j += 1;
        }
        let t = classify_word(&s[i..j]);
        if matches!(t, T::Word) {
            out.push(T::Word);
            return j;
        }
        out.push(T::Num);
        return i;
    }
    out.push(T::Num);
    i
}

fn scan_word(s: &[u8], start: usize, out: &mut Vec<T>) -> usize {
    let mut i = start;
    while i < s.len() && (is_word_byte(s[i]) || (s[i] == b'.' && s.get(i + 1).is_some_and(|c| is_word_byte(*c)))) {
        i += 1;
    }
    let mut word = &s[start..i];
    // `SELECT.2alias`: a keyword right before a dot stands alone.
    if let Some(dot) = word.iter().position(|c| *c == b'.') {
        if !matches!(classify_word(&word[..dot]), T::Word) {
            word = &word[..dot];
            i = start + dot;
        }
    }
    // A function call: a word, optional blanks or comments, `(`.
    let mut j = i;
    while j < s.len() && matches!(s[j], b' ' | b'\t' | b'\n' | b'\r') {
        j += 1;
    }
    if j + 1 < s.len() && s[j] == b'/' && s[j + 1] == b'*' {
        if let Some(n) = memchr::memmem::find(&s[j + 2..(j + 2 + 256).min(s.len())], b"*/") {
            j = j + 2 + n + 2;
        }
    }
    let t = classify_word(word);
    let lw = word.to_ascii_lowercase();
    if lw.starts_with(b"utl_http")
        || lw.starts_with(b"utl_inaddr")
        || lw.starts_with(b"dbms_pipe")
        || lw.starts_with(b"dbms_lock")
    {
        out.push(T::Func { danger: true, common: false });
        return i;
    }
    if s.get(j) == Some(&b'(') && matches!(t, T::Word | T::Stmt | T::Clause | T::Literal) {
        out.push(classify_func(word));
    } else if matches!(t, T::Word) && word.contains(&b'.') {
        // `information_schema.tables`, `mysql.user`
        out.push(if is_schema(word) { T::Clause } else { T::Word });
    } else {
        out.push(if matches!(t, T::Word) && is_schema(word) { T::Clause } else { t });
    }
    i
}

fn is_schema(w: &[u8]) -> bool {
    // Every name below starts with one of these letters and is at least 4 long: most words leave here.
    if w.len() < 4 || !matches!(w[0].to_ascii_lowercase(), b'i' | b's' | b'p' | b'a' | b'u' | b'm' | b'd') {
        return false;
    }
    let lower: Vec<u8> = w.iter().map(u8::to_ascii_lowercase).collect();
    const NAMES: &[&[u8]] = &[
        b"information_schema",
        b"sysibm.",
        b"syscat.",
        b"sysobjects",
        b"syscolumns",
        b"pg_catalog",
        b"pg_shadow",
        b"pg_user",
        b"sqlite_master",
        b"all_tables",
        b"user_tables",
        b"mysql.user",
        b"dual",
        b"msysobjects",
        b"sys.objects",
        b"sys.tables",
    ];
    NAMES.iter().any(|n| lower.starts_with(n) || (lower.len() > n.len() && memchr::memmem::find(&lower, n).is_some()))
}

fn is_operand(t: T) -> bool {
    matches!(t, T::Str { .. } | T::Num | T::Word | T::Literal | T::Var { .. } | T::Func { .. } | T::LParen)
}

/// The best rule so far for one reading: a higher score replaces it; the first of equals stays.
#[derive(Default)]
struct Best(Option<(&'static str, u32)>);

impl Best {
    fn bump(&mut self, rule: &'static str, score: u32) {
        if self.0.is_none_or(|(_, s)| score > s) {
            self.0 = Some((rule, score));
        }
    }
}

/// One reading's tokens and where its injected part starts: after the closed literal in a quoted
/// reading, after a leading number or word (and closing parentheses) in the plain one.
struct Reading<'t> {
    t: &'t [T],
    quote: Option<u8>,
    quoted: bool,
    start: usize,
    /// The reading broke out of the app's literal or expression (`'`, `1)`).
    broke: bool,
}

impl<'t> Reading<'t> {
    fn new(t: &'t [T], quote: Option<u8>) -> Reading<'t> {
        let quoted = quote.is_some();
        let n = t.len();
        let mut start = 0;
        let mut broke = false;
        if quoted {
            if matches!(t[0], T::Str { closed: true }) {
                start = 1;
                broke = true;
            }
        } else if matches!(t[0], T::Num | T::Word | T::Literal | T::Var { .. }) || t[0] == T::RParen {
            start = 1;
            broke = t[0] != T::Word;
        }
        while start < n && t[start] == T::RParen {
            start += 1;
            broke = true;
        }
        Reading { t, quote, quoted, start, broke }
    }

    /// The next token from `i` that is not a comment or an opening parenthesis.
    fn skip(&self, mut i: usize) -> usize {
        while i < self.t.len() && matches!(self.t[i], T::Comment | T::LParen) {
            i += 1;
        }
        i
    }
}

/// The rule that fired and its score (1–10), for one reading: each family of shapes in turn, in
/// a fixed order (on equal scores the first rule named stays).
fn judge(t: &[T], quote: Option<u8>) -> Option<(&'static str, u32)> {
    if t.is_empty() {
        return None;
    }
    let r = Reading::new(t, quote);
    let mut best = Best::default();
    let code = single_tokens(&r, &mut best);
    selects(&r, &mut best);
    breakouts(&r, &mut best);
    logic_comparisons(&r, &mut best);
    comment_cuts(&r, &mut best);
    statements(&r, &mut best);
    shapes_after(&r, &mut best, code);
    best.0
}

/// `union select`, dangerous functions, stacked queries; returns how much of the value is code
/// (signals that it is code, not prose).
fn single_tokens(r: &Reading<'_>, best: &mut Best) -> u32 {
    let (t, n, broke) = (r.t, r.t.len(), r.broke);
    let mut bump = |rule: &'static str, score: u32| best.bump(rule, score);
    let skip = |i: usize| r.skip(i);
    let mut code = 0; // signals that the value is code, not prose
    for (i, tok) in t.iter().enumerate() {
        match tok {
            T::Union => {
                let mut j = skip(i + 1);
                while j < n && matches!(t[j], T::Word | T::Clause) && j < i + 3 {
                    j = skip(j + 1); // `union all select`, `union distinct select`
                }
                if j < n && t[j] == T::Select {
                    bump("union_select", 10);
                }
            }
            T::Func { danger: true, .. } => bump("attack_function", if broke || i == 0 { 9 } else { 8 }),
            T::Func { common: true, .. } => code += 1,
            T::Var { system: true } => code += 2,
            T::Semi => {
                let j = skip(i + 1);
                if j < n && matches!(t[j], T::Stmt | T::Select | T::Waitfor) {
                    bump("stacked_query", 9);
                }
            }
            T::Stmt if i + 1 < n && t[i + 1] == T::Clause => code += 1,
            T::Clause | T::Comma | T::Cmp | T::Op | T::Comment | T::LParen => code += 1,
            _ => {}
        }
    }
    code
}

/// `SELECT … FROM` with code around it, or a sub-select.
fn selects(r: &Reading<'_>, best: &mut Best) {
    let (t, broke) = (r.t, r.broke);
    let mut bump = |rule: &'static str, score: u32| best.bump(rule, score);
    // SELECT … FROM with code around it, or a sub-select.
    if let Some(sel) = t.iter().position(|x| *x == T::Select) {
        let after = &t[sel + 1..];
        let codey = after
            .iter()
            .take(6)
            .any(|x| matches!(x, T::Num | T::Func { .. } | T::Var { .. } | T::Op | T::Comma | T::Literal | T::LParen));
        let has_from = after.iter().take(200).any(|x| *x == T::From);
        if sel > 0 && t[sel - 1] == T::LParen && after.first().is_some_and(|x| *x != T::RParen) && (codey || has_from) {
            bump("subquery", 9);
        }
        if has_from && (codey || broke) {
            bump("select_from", 8);
        }
        if (broke || sel == 0) && codey {
            bump("select_after_break", 8);
        }
    }
}

/// What follows the break out of the app's literal or expression: logic, comments, statements.
fn breakouts(r: &Reading<'_>, best: &mut Best) {
    let (t, n, quoted, start, broke) = (r.t, r.t.len(), r.quoted, r.start, r.broke);
    let mut bump = |rule: &'static str, score: u32| best.bump(rule, score);
    if start < n && (broke || quoted) {
        let rest = &t[start..];
        match rest[0] {
            // `' or 1=1`, `1 and sleep(5)`, `x' or 'a'='a`
            T::Logic if rest.len() >= 2 => {
                let mut j = 1;
                while j < rest.len() && matches!(rest[j], T::Logic | T::LParen | T::Op) {
                    j += 1;
                }
                if j < rest.len() && is_operand(rest[j]) {
                    let after = rest.get(j + 1).copied();
                    match (rest[j], after) {
                        (_, Some(T::Cmp | T::OpWord)) => bump("logic_comparison", 9),
                        (T::Func { .. }, _) => bump("logic_function", 9),
                        (T::Select, _) => bump("logic_select", 9),
                        (T::Str { closed: false }, None) if quoted => bump("logic_string", 8),
                        (T::Num | T::Literal | T::Str { .. } | T::Var { .. }, None | Some(T::Comment | T::Semi))
                            if quoted || rest.len() > j + 1 =>
                        {
                            bump("logic_tautology", 8)
                        }
                        (T::Num | T::Str { .. } | T::Var { .. }, Some(T::Op)) if quoted => bump("logic_arith", 8),
                        (T::Word, Some(T::Comment)) => bump("logic_comment", 7),
                        _ => {}
                    }
                } else if j < rest.len() && rest[j] == T::Select {
                    bump("logic_select", 9);
                }
            }
            // `admin'--`, `1)#`
            // `admin'--`, `1)#`: the comment ends the value (or only SQL-ish tokens follow it).
            T::Comment
                if (quoted || start > 1) && rest.len() <= 2 && (rest.len() == 1 || !matches!(rest[1], T::Word)) =>
            {
                bump("break_comment", 7)
            }
            T::OrderGroup if rest.get(1) == Some(&T::By) => bump("order_by", 8),
            T::Stmt | T::Select
                if rest.get(1).is_some_and(|x| {
                    matches!(
                        x,
                        T::Func { .. }
                            | T::Var { .. }
                            | T::Num
                            | T::Clause
                            | T::Semi
                            | T::Comment
                            | T::Op
                            | T::LParen
                            | T::From
                    )
                }) || (rest.len() >= 3 && rest[0] == T::Select) =>
            {
                bump("break_statement", 8)
            }
            T::Union
                if rest.get(1).is_some_and(|x| matches!(x, T::Select | T::Comment | T::LParen | T::Word | T::Stmt))
                    && rest.len() >= 3 =>
            {
                bump("break_union", 7)
            }
            T::Semi
                if quoted
                    && rest.len() > 1
                    && matches!(rest[1], T::Stmt | T::Select | T::Comment | T::Var { .. } | T::Func { .. }) =>
            {
                bump("break_semicolon", 7)
            }
            T::Cmp | T::OpWord
                if quoted && rest.len() >= 2 && (is_operand(rest[1]) || matches!(rest[1], T::Op | T::Logic)) =>
            {
                // `' = '`, `'=1 or 1=1`, `1' like '1`: a comparison that goes on into more SQL.
                let more = rest[2..].iter().any(|x| {
                    matches!(x, T::Logic | T::Comment | T::Semi | T::Func { .. } | T::Cmp | T::Union | T::Select)
                });
                let string_close = matches!(rest[1], T::Str { closed: false }) && rest.len() == 2 && rest[0] == T::Cmp;
                if more || string_close {
                    bump("break_comparison", 7);
                }
            }
            T::Op if quoted && rest.len() >= 2 && matches!(rest[1], T::Func { .. } | T::Select | T::LParen) => {
                bump("break_arith", 8)
            }
            T::Logic if quoted && rest.get(1) == Some(&T::Comment) => bump("break_logic_comment", 7),
            T::Logic if quoted => bump("break_logic", 7),
            T::Clause
                if rest.len() >= 3
                    && rest[1..]
                        .iter()
                        .take(4)
                        .any(|x| matches!(x, T::Cmp | T::Func { .. } | T::Num | T::Var { .. } | T::Comment)) =>
            {
                bump("break_clause", 7)
            }
            _ => {}
        }
    }
}

/// A logical operator joining comparisons.
fn logic_comparisons(r: &Reading<'_>, best: &mut Best) {
    let (t, n, broke) = (r.t, r.t.len(), r.broke);
    let mut bump = |rule: &'static str, score: u32| best.bump(rule, score);
    // A logical operator joining comparisons: `HOPE AND 8=3`, ` OR 1=1`, `-9-(2) OR 1 = 1`,
    // `HAVING 1=1`. Prose has logic words, but not followed by a comparison of literals.
    for i in 0..n {
        let joins = matches!(t[i], T::Logic) || (t[i] == T::Clause && i + 1 < n);
        if !joins {
            continue;
        }
        let mut j = i + 1;
        while j < n && matches!(t[j], T::LParen | T::Op | T::Logic) {
            j += 1;
        }
        let mut op = j + 1;
        if j < n && matches!(t[j], T::Func { .. }) && op < n && t[op] == T::LParen {
            // Skip the call's arguments: `COS(3)=SIN(4)`.
            let mut depth = 0usize;
            while op < n {
                match t[op] {
                    T::LParen => depth += 1,
                    T::RParen => {
                        depth = depth.saturating_sub(1);
                        if depth == 0 {
                            op += 1;
                            break;
                        }
                    }
                    _ => {}
                }
                op += 1;
            }
        }
        while op < n && t[op] == T::RParen {
            op += 1;
        }
        if op + 1 < n && t[op] == T::Logic && t[op + 1] == T::OpWord {
            op += 1; // `1 NOT LIKE 0`
        }
        if op < n && j < n && is_operand(t[j]) && matches!(t[op], T::Cmp | T::OpWord) {
            let lhs = t[j];
            let mut k = op + 1;
            while k < n && matches!(t[k], T::LParen | T::Op) {
                k += 1;
            }
            let rhs =
                t.get(k).copied().map(|x| if x == T::Select { T::Func { danger: false, common: false } } else { x });
            let literal = |x: T| matches!(x, T::Num | T::Str { .. } | T::Func { .. } | T::Var { .. } | T::Literal);
            let both_words = lhs == T::Word && rhs == Some(T::Word);
            if rhs.is_some_and(is_operand)
                && (literal(lhs) || rhs.is_some_and(literal) || (both_words && (i == 0 || broke)))
            {
                bump("logic_comparison", 8);
                break;
            }
        }
    }
}

/// A comment that cuts the rest of the query off after SQL-only tokens.
fn comment_cuts(r: &Reading<'_>, best: &mut Best) {
    let (t, quoted) = (r.t, r.quoted);
    let mut bump = |rule: &'static str, score: u32| best.bump(rule, score);
    // SQL-only tokens, then a comment that cuts the rest of the query off: `-1#`, `1 * 1 --`,
    // `( 'a' ) --`, `@version /*`. A value of words (`Apt #5`) or a lone keyword (`TRUE#LAST`)
    // does not count.
    if let Some(c) = t.iter().position(|x| *x == T::Comment) {
        let head = &t[..c];
        let sqlish = |x: &T| {
            matches!(
                x,
                T::Num
                    | T::Str { .. }
                    | T::Var { .. }
                    | T::Op
                    | T::Cmp
                    | T::Logic
                    | T::LParen
                    | T::RParen
                    | T::Func { .. }
                    | T::OpWord
                    | T::Literal
                    | T::Comma
                    | T::Select
                    | T::Union
                    | T::Clause
            )
        };
        let strong =
            head.iter().any(|x| matches!(x, T::Num | T::Var { .. } | T::Op | T::LParen | T::RParen | T::Func { .. }));
        if !head.is_empty() && !quoted && head.iter().all(sqlish) && strong {
            bump("code_then_comment", 7);
        }
    }
}

/// Whole-statement shapes: SQL functions, `ORDER BY n`, `WAITFOR`, `DECLARE`, `INTO OUTFILE`, `CASE`.
fn statements(r: &Reading<'_>, best: &mut Best) {
    let t = r.t;
    let mut bump = |rule: &'static str, score: u32| best.bump(rule, score);
    let commons = t.iter().filter(|x| matches!(x, T::Func { common: true, .. })).count();
    if commons >= 2 {
        bump("sql_functions", 7);
    }
    for w in t.windows(3) {
        match w {
            [T::OrderGroup, T::By, T::Num] => bump("order_by", 8),
            [T::Waitfor, T::Clause | T::Word, T::Str { .. }] => bump("waitfor_delay", 9),
            [T::Semi, T::Func { .. }, _] => bump("stacked_query", 8),
            _ => {}
        }
    }
    if t.len() >= 3
        && t[0] == T::Stmt
        && matches!(t[1], T::Var { .. })
        && matches!(t[2], T::Word | T::Func { .. } | T::Cmp)
    {
        bump("declare_variable", 8);
    }
    if t.first() == Some(&T::Select)
        && t.last() == Some(&T::Semi)
        && t.iter().any(|x| *x == T::From || matches!(x, T::Word))
        && t.len() >= 3
    {
        bump("select_statement", 7);
    }
    if t.contains(&T::Outfile) {
        bump("into_outfile", 9);
    }
    if let Some(c) = t.iter().position(|x| *x == T::Case) {
        let rest = &t[c..];
        if rest.contains(&T::When) && rest.contains(&T::Then) {
            bump("case_when", 7);
        }
    }
}

/// Breaking in and out of the literal around an operator, system variables, comparisons inside
/// function arguments, stored procedures, dense SQL.
fn shapes_after(r: &Reading<'_>, best: &mut Best, code: u32) {
    let (t, n, quote) = (r.t, r.t.len(), r.quote);
    let mut bump = |rule: &'static str, score: u32| best.bump(rule, score);
    // Breaking out of the literal and back into it around an operator: `aa'like-'aa`,
    // `A' + 'B`, `asd'|column&&'1` (the app's own closing quote ends the last string).
    // Single quotes only: double quotes are inch marks in product names (`16" or 18"`).
    if quote == Some(b'\'')
        && n >= 3
        && matches!(t[0], T::Str { closed: true })
        && t[n - 1] == (T::Str { closed: false })
    {
        let mid = &t[1..n - 1];
        let opish = |x: &T| matches!(x, T::Op | T::Cmp | T::OpWord | T::Logic);
        let allowed = |x: &T| {
            matches!(
                x,
                T::Op
                    | T::Cmp
                    | T::OpWord
                    | T::Logic
                    | T::Num
                    | T::Var { .. }
                    | T::Literal
                    | T::LParen
                    | T::RParen
                    | T::Word
                    | T::Func { .. }
                    | T::Str { closed: true }
            )
        };
        let no_prose = !mid.windows(2).any(|w| w[0] == T::Word && w[1] == T::Word);
        let logic = mid.iter().any(|x| matches!(x, T::Cmp | T::OpWord | T::Logic));
        if mid.first().is_some_and(opish) && mid.iter().all(allowed) && no_prose && logic {
            bump("string_break_operator", 7);
        }
    }
    // A system variable used in code: `MID(@@hostname, 1, 1)`, `@@version=1`.
    if t.contains(&T::Var { system: true }) && t.iter().any(|x| matches!(x, T::Func { .. } | T::Cmp | T::Union)) {
        bump("system_variable", 7);
    }
    // A comparison of literals inside a SQL function's arguments: `IIF(2510=9436,FOO,1/0)`.
    for (i, x) in t.iter().enumerate() {
        if matches!(x, T::Func { common: true, .. }) && t.get(i + 1) == Some(&T::LParen) {
            let args = &t[(i + 2).min(n)..(i + 8).min(n)];
            if args.windows(3).any(|w| matches!(w, [T::Num | T::Str { .. }, T::Cmp, T::Num | T::Str { .. }])) {
                bump("function_comparison", 7);
            }
        }
    }
    if t.windows(2).any(|w| w == [T::Stmt, T::Stmt]) {
        bump("stored_procedure", 8);
    }
    // Dense SQL syntax with no single decisive shape: `1,2,3,concat(0x3a,user())`.
    if code >= 6 && t.iter().filter(|x| matches!(x, T::Func { .. })).count() >= 2 {
        bump("dense_sql", 7);
    }
}

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

#[cfg(test)]
mod tests {
    use super::check;

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
