//! A span-aware reader over a parsed TOML document. Each getter marks its key as known and
//! records a typed error when the value has the wrong shape; `finish` reports every key that no
//! getter asked for as unknown, with a suggestion when one is close.

use std::ops::Range;

use toml_edit::{Item, TableLike, Value};

use crate::error::ConfigError;

/// The file being read and the errors found so far.
pub(crate) struct Doc<'s> {
    pub file: String,
    pub src: &'s str,
    pub errors: Vec<ConfigError>,
}

impl<'s> Doc<'s> {
    pub fn line_of(&self, span: Option<Range<usize>>) -> Option<usize> {
        let start = span?.start.min(self.src.len());
        Some(1 + self.src.as_bytes()[..start].iter().filter(|&&b| b == b'\n').count())
    }

    pub fn error(&mut self, span: Option<Range<usize>>, key: &str, message: impl Into<String>) {
        let line = self.line_of(span);
        self.errors.push(ConfigError { file: self.file.clone(), line, key: key.to_owned(), message: message.into() });
    }
}

/// One table of the document under a dotted path.
pub(crate) struct Table<'t> {
    pub path: String,
    table: &'t dyn TableLike,
    known: Vec<&'static str>,
    /// Where the table's key stands (for errors about the table as a whole).
    key_span: Option<Range<usize>>,
}

fn describe(item: &Item) -> &'static str {
    match item {
        Item::None => "nothing",
        Item::Table(_) => "a table",
        Item::ArrayOfTables(_) => "an array of tables",
        Item::Value(v) => match v {
            Value::String(_) => "a string",
            Value::Integer(_) => "an integer",
            Value::Float(_) => "a float",
            Value::Boolean(_) => "a boolean",
            Value::Datetime(_) => "a date",
            Value::Array(_) => "an array",
            Value::InlineTable(_) => "a table",
        },
    }
}

impl<'t> Table<'t> {
    pub fn root(table: &'t dyn TableLike) -> Self {
        Table { path: String::new(), table, known: Vec::new(), key_span: None }
    }

    /// The line of the table's own key.
    pub fn line(&self, doc: &Doc) -> Option<usize> {
        doc.line_of(self.key_span.clone())
    }

    /// Where the table's own key is.
    pub fn span(&self) -> Option<Range<usize>> {
        self.key_span.clone()
    }

    pub fn key_path(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{}", self.path, key)
        }
    }

    /// The raw item under `key`, marked as known, with the span of its key.
    pub fn item(&mut self, key: &'static str) -> Option<(&'t Item, Option<Range<usize>>)> {
        self.known.push(key);
        let (k, item) = self.table.get_key_value(key)?;
        let span = k.span().or_else(|| item.span());
        Some((item, span))
    }

    fn value(&mut self, doc: &mut Doc, key: &'static str, want: &str) -> Option<(&'t Value, Option<Range<usize>>)> {
        let (item, span) = self.item(key)?;
        match item.as_value() {
            Some(v) => Some((v, span)),
            None => {
                doc.error(span, &self.key_path(key), format!("expected {want}, found {}", describe(item)));
                None
            }
        }
    }

    pub fn string(&mut self, doc: &mut Doc, key: &'static str) -> Option<(String, Option<Range<usize>>)> {
        let (v, span) = self.value(doc, key, "a string")?;
        match v.as_str() {
            Some(s) => Some((s.to_owned(), span)),
            None => {
                doc.error(
                    span,
                    &self.key_path(key),
                    format!("expected a string, found {}", describe(&Item::Value(v.clone()))),
                );
                None
            }
        }
    }

    pub fn boolean(&mut self, doc: &mut Doc, key: &'static str) -> Option<bool> {
        let (v, span) = self.value(doc, key, "true or false")?;
        match v.as_bool() {
            Some(b) => Some(b),
            None => {
                doc.error(span, &self.key_path(key), "expected true or false");
                None
            }
        }
    }

    pub fn integer(&mut self, doc: &mut Doc, key: &'static str, min: i64, max: i64) -> Option<i64> {
        let (v, span) = self.value(doc, key, "an integer")?;
        match v.as_integer() {
            Some(n) if (min..=max).contains(&n) => Some(n),
            Some(n) => {
                doc.error(span, &self.key_path(key), format!("{n} is out of range ({min} to {max})"));
                None
            }
            None => {
                doc.error(span, &self.key_path(key), "expected an integer");
                None
            }
        }
    }

    /// A list of strings; a single string is accepted as a list of one.
    pub fn strings(&mut self, doc: &mut Doc, key: &'static str) -> Option<(Vec<String>, Option<Range<usize>>)> {
        let (v, span) = self.value(doc, key, "an array of strings")?;
        match v {
            Value::String(s) => Some((vec![s.value().clone()], span)),
            Value::Array(a) => {
                let mut out = Vec::with_capacity(a.len());
                for (i, el) in a.iter().enumerate() {
                    match el.as_str() {
                        Some(s) => out.push(s.to_owned()),
                        None => {
                            doc.error(
                                el.span().or(span.clone()),
                                &format!("{}[{i}]", self.key_path(key)),
                                "expected a string",
                            );
                            return None;
                        }
                    }
                }
                Some((out, span))
            }
            _ => {
                doc.error(span, &self.key_path(key), "expected an array of strings");
                None
            }
        }
    }

    /// A value parsed by `parse` from a string, or from an integer when `int` says how.
    pub fn parsed<T>(
        &mut self,
        doc: &mut Doc,
        key: &'static str,
        parse: impl Fn(&str) -> Result<T, String>,
        int: Option<&dyn Fn(i64) -> Result<T, String>>,
    ) -> Option<T> {
        let (v, span) = self.value(doc, key, "a string")?;
        let res = match (v, int) {
            (Value::String(s), _) => parse(s.value()),
            (Value::Integer(n), Some(f)) => f(*n.value()),
            _ => Err(format!("expected a string, found {}", describe(&Item::Value(v.clone())))),
        };
        match res {
            Ok(t) => Some(t),
            Err(m) => {
                doc.error(span, &self.key_path(key), m);
                None
            }
        }
    }

    /// A duration above zero: a string (`"30s"`) or a whole number of seconds.
    pub fn positive_duration(&mut self, doc: &mut Doc, key: &'static str) -> Option<std::time::Duration> {
        let d = self.parsed(doc, key, crate::units::parse_duration, Some(&crate::units::secs_from_int))?;
        if d.is_zero() {
            doc.error(None, &self.key_path(key), "must be longer than zero");
            return None;
        }
        Some(d)
    }

    /// A sub-table (`[a.b]` or an inline `{ … }`).
    pub fn table(&mut self, doc: &mut Doc, key: &'static str) -> Option<Table<'t>> {
        let (item, span) = self.item(key)?;
        match item.as_table_like() {
            Some(t) => Some(Table { path: self.key_path(key), table: t, known: Vec::new(), key_span: span }),
            None => {
                doc.error(span, &self.key_path(key), format!("expected a table, found {}", describe(item)));
                None
            }
        }
    }

    /// An array of tables (`[[a.b]]`), each with its index in the path.
    pub fn tables(&mut self, doc: &mut Doc, key: &'static str) -> Vec<(Table<'t>, Option<Range<usize>>)> {
        let Some((item, span)) = self.item(key) else { return Vec::new() };
        let base = self.key_path(key);
        match item {
            Item::ArrayOfTables(a) => a
                .iter()
                .enumerate()
                .map(|(i, t)| {
                    (
                        Table {
                            path: format!("{base}[{i}]"),
                            table: t as &dyn TableLike,
                            known: Vec::new(),
                            key_span: t.span(),
                        },
                        t.span(),
                    )
                })
                .collect(),
            Item::Value(Value::Array(a)) => {
                let mut out = Vec::new();
                for (i, v) in a.iter().enumerate() {
                    match v.as_inline_table() {
                        Some(t) => out.push((
                            Table {
                                path: format!("{base}[{i}]"),
                                table: t as &dyn TableLike,
                                known: Vec::new(),
                                key_span: t.span(),
                            },
                            t.span(),
                        )),
                        None => doc.error(v.span().or(span.clone()), &format!("{base}[{i}]"), "expected a table"),
                    }
                }
                out
            }
            other => {
                doc.error(span, &base, format!("expected an array of tables, found {}", describe(other)));
                Vec::new()
            }
        }
    }

    /// Every entry of a free-form table (header names, environment variables), key span included.
    pub fn entries(&self) -> Vec<(&'t str, &'t Item, Option<Range<usize>>)> {
        self.table
            .iter()
            .map(|(k, item)| {
                let span = self.table.key(k).and_then(|key| key.span()).or_else(|| item.span());
                (k, item, span)
            })
            .collect()
    }

    /// Reports every key no getter asked for.
    pub fn finish(self, doc: &mut Doc) {
        for (k, item) in self.table.iter() {
            if self.known.contains(&k) {
                continue;
            }
            let span = self.table.key(k).and_then(|key| key.span()).or_else(|| item.span());
            let hint = closest(k, &self.known).map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default();
            let known = if self.known.is_empty() {
                String::new()
            } else {
                format!("; known keys here: {}", self.known.join(", "))
            };
            doc.error(span, &self.key_path(k), format!("unknown key{hint}{known}"));
        }
    }
}

/// The known key nearest to `word` by edit distance, when it is near enough to be a typo.
fn closest<'a>(word: &str, known: &[&'a str]) -> Option<&'a str> {
    known
        .iter()
        .map(|k| (levenshtein(word, k), *k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 4))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != *cb)).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn suggestions() {
        assert_eq!(closest("lisen", &["listen", "upstream"]), Some("listen"));
        assert_eq!(closest("zzzzzz", &["listen", "upstream"]), None);
    }
}
