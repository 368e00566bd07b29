//! SQL as a sequence of token classes: strings, numbers, words, keywords grouped by the role they
//! play in an injection, functions (dangerous or common), variables, operators, comments (MySQL's
//! executable `/*! … */` opened up). Bounded: at most `MAX_TOKENS` per reading.

/// A token class. Keywords are grouped by the role they play in an injection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum T {
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

/// A token class's short name, for explanations.
pub(super) fn name(t: &T) -> &'static str {
    match t {
        T::Str { closed: true } => "Str",
        T::Str { closed: false } => "OpenStr",
        T::Num => "Num",
        T::Word => "Word",
        T::Union => "Union",
        T::Select => "Select",
        T::Stmt => "Stmt",
        T::Clause => "Clause",
        T::OrderGroup => "OrderBy",
        T::By => "By",
        T::From => "From",
        T::Logic => "Logic",
        T::OpWord => "OpWord",
        T::Literal => "Literal",
        T::Func { danger: true, .. } => "DangerFunc",
        T::Func { .. } => "Func",
        T::Var { system: true } => "SysVar",
        T::Var { .. } => "Var",
        T::Cmp => "Cmp",
        T::Op => "Op",
        T::LParen => "(",
        T::RParen => ")",
        T::Comma => "Comma",
        T::Semi => "Semi",
        T::Comment => "Comment",
        T::Dot => "Dot",
        T::Outfile => "Outfile",
        T::Case => "Case",
        T::When => "When",
        T::Then => "Then",
        T::Waitfor => "Waitfor",
        T::Other => "Other",
    }
}

/// A tokenized reading. Bounded: long values are cut to [`MAX_TOKENS`] tokens.
pub(super) const MAX_TOKENS: usize = 256;

pub(super) fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80
}

pub(super) fn classify_word(w: &[u8]) -> T {
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
        | b"end" | b"top" | b"distinct" | b"distinctrow" | b"all" | b"collate" | b"analyse" | b"fetch" | b"rownum"
        | b"delay" | b"waitfor_time" | b"sleep_ms" | b"table" => T::Clause,
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

pub(super) fn classify_func(w: &[u8]) -> T {
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
pub(super) fn tokenize(prefix: Option<u8>, s: &[u8], out: &mut Vec<T>) {
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
            b'@' => i = scan_variable(s, i, out),
            b'(' | b')' | b',' | b';' | b'.' => {
                out.push(match b {
                    b'(' => T::LParen,
                    b')' => T::RParen,
                    b',' => T::Comma,
                    b';' => T::Semi,
                    _ => T::Dot,
                });
                i += 1;
            }
            b'=' | b'<' | b'>' | b'!' | b':' => i = scan_comparison(s, i, out),
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
/// `=`, `<>`, `>=`, `!=`, `:=`…: a comparison; `!` alone is a logical not, `:` alone nothing.
fn scan_comparison(s: &[u8], i: usize, out: &mut Vec<T>) -> usize {
    let b = s[i];
    let mut j = i + 1;
    while j < s.len() && matches!(s[j], b'=' | b'<' | b'>' | b'!') && j - i < 3 {
        j += 1;
    }
    out.push(match b {
        b':' if j == i + 1 => T::Other,
        b'!' if j == i + 1 => T::Logic,
        _ => T::Cmp,
    });
    j
}

/// `@name` or `@@system_variable`.
fn scan_variable(s: &[u8], i: usize, out: &mut Vec<T>) -> usize {
    let system = s.get(i + 1) == Some(&b'@');
    let mut j = i + if system { 2 } else { 1 };
    while j < s.len() && (is_word_byte(s[j]) || s[j] == b'.') {
        j += 1;
    }
    out.push(T::Var { system });
    j.max(i + 1)
}

pub(super) fn scan_string(s: &[u8], start: usize, q: u8) -> (bool, usize) {
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

pub(super) fn scan_number(s: &[u8], start: usize, out: &mut Vec<T>) -> usize {
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

pub(super) fn scan_word(s: &[u8], start: usize, out: &mut Vec<T>) -> usize {
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

pub(super) fn is_schema(w: &[u8]) -> bool {
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
