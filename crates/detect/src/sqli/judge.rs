//! The rules over one reading's tokens: each family of injection shapes, scored 1–10.

use super::tokens::T;

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
pub(super) fn judge(t: &[T], quote: Option<u8>) -> Option<(&'static str, u32)> {
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
                // `union all select`, `union distinct select`; not `Union Station to Select`.
                while j < n && t[j] == T::Clause && j < i + 3 {
                    j = skip(j + 1);
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
            T::Logic if rest.len() >= 2 => logic_after_break(rest, quoted, &mut bump),
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

/// A logical operator right after the break: `' or 1=1`, `1 and sleep(5)`, `x' or 'a'='a`.
fn logic_after_break(rest: &[T], quoted: bool, bump: &mut impl FnMut(&'static str, u32)) {
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
            // `; sleep(5)`, `; if(1=1) waitfor …`: not `…; if (x && y) return` in code.
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
