//! A small HTML tokenizer, after the HTML standard's tokenization rules: it yields start and end
//! tags with the few attributes the scoring reads, and skips text, comments, doctypes and the
//! contents of raw-text elements (`<script>`, `<style>`, `<textarea>`, …) when told to.
//!
//! Every step moves forward through the input, so the work is linear in its size.

use crate::entities;

/// The attributes kept on tags (the first of each name wins, as in HTML).
const KEPT: [&str; 10] =
    ["src", "integrity", "http-equiv", "content", "name", "href", "color", "face", "size", "encoding"];

/// A start or end tag.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Tag {
    pub end: bool,
    /// The tag name, lowercase.
    pub name: String,
    pub self_closing: bool,
    attributes: Vec<(&'static str, String)>,
}

impl Tag {
    /// The value of a kept attribute (character references decoded), when present.
    pub(crate) fn attr(&self, name: &str) -> Option<&str> {
        self.attributes.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str())
    }
}

fn is_space(b: u8) -> bool {
    matches!(b, b'\t' | b'\n' | b'\x0c' | b'\r' | b' ')
}

/// Tokenizes one document.
pub(crate) struct Tokenizer<'a> {
    src: &'a str,
    pos: usize,
}

impl<'a> Tokenizer<'a> {
    pub(crate) fn new(src: &'a str) -> Self {
        Tokenizer { src, pos: 0 }
    }

    fn bytes(&self) -> &'a [u8] {
        self.src.as_bytes()
    }

    fn at(&self, i: usize) -> Option<u8> {
        self.bytes().get(i).copied()
    }

    fn find_from(&self, from: usize, needle: &str) -> Option<usize> {
        self.src.get(from..).and_then(|rest| rest.find(needle)).map(|p| from + p)
    }

    fn finish(&mut self) -> Option<Tag> {
        self.pos = self.src.len();
        None
    }

    /// The next tag; `None` at the end. `foreign` says whether the parser is inside SVG or MathML,
    /// where `<![CDATA[…]]>` sections exist.
    pub(crate) fn next_tag(&mut self, foreign: bool) -> Option<Tag> {
        loop {
            let lt = self.find_from(self.pos, "<")?;
            match (self.at(lt + 1), self.at(lt + 2)) {
                (Some(b'!'), _) => self.declaration(lt, foreign),
                (Some(b'/'), Some(c)) if c.is_ascii_alphabetic() => return self.tag(lt + 2, true),
                (Some(b'/'), Some(b'>')) => self.pos = lt + 3,
                (Some(b'/'), Some(_)) => self.skip_past(lt + 2, ">"),
                (Some(c), _) if c.is_ascii_alphabetic() => return self.tag(lt + 1, false),
                (Some(b'?'), _) => self.skip_past(lt + 1, ">"),
                _ => self.pos = lt + 1,
            }
        }
    }

    /// Moves past the next `needle` at or after `from` (to the end when there is none).
    fn skip_past(&mut self, from: usize, needle: &str) {
        self.pos = self.find_from(from, needle).map_or(self.src.len(), |at| at + needle.len());
    }

    /// `<!…`: a comment, a doctype, a CDATA section or a bogus comment.
    fn declaration(&mut self, lt: usize, foreign: bool) {
        let rest = self.src.get(lt + 2..).unwrap_or("");
        if rest.starts_with("--") {
            let body = lt + 4;
            match (self.at(body), self.at(body + 1)) {
                (Some(b'>'), _) => self.pos = body + 1,
                (Some(b'-'), Some(b'>')) => self.pos = body + 2,
                _ => {
                    let dashes = self.find_from(body, "-->").map(|p| p + 3);
                    let bang = self.find_from(body, "--!>").map(|p| p + 4);
                    self.pos = match (dashes, bang) {
                        (Some(a), Some(b)) => a.min(b),
                        (a, b) => a.or(b).unwrap_or(self.src.len()),
                    };
                }
            }
        } else if foreign && rest.starts_with("[CDATA[") {
            self.skip_past(lt + 9, "]]>");
        } else {
            self.skip_past(lt + 2, ">");
        }
    }

    /// A tag whose name starts at `from`; `None` (and the end of input) when the input ends inside
    /// it, which drops the tag.
    fn tag(&mut self, from: usize, end: bool) -> Option<Tag> {
        let len = self.src.len();
        let Some(name_end) = (from..len).find(|&i| self.at(i).is_some_and(|b| is_space(b) || b == b'/' || b == b'>'))
        else {
            return self.finish();
        };
        let name = self.src.get(from..name_end).unwrap_or("").to_ascii_lowercase();
        let mut tag = Tag { end, name, ..Tag::default() };
        self.pos = name_end;
        loop {
            self.skip_spaces();
            match self.at(self.pos) {
                None => return self.finish(),
                Some(b'>') => {
                    self.pos += 1;
                    return Some(tag);
                }
                Some(b'/') => {
                    self.pos += 1;
                    if self.at(self.pos) == Some(b'>') {
                        self.pos += 1;
                        tag.self_closing = true;
                        return Some(tag);
                    }
                }
                Some(_) => {
                    if self.attribute(&mut tag).is_none() {
                        return self.finish();
                    }
                }
            }
        }
    }

    fn skip_spaces(&mut self) {
        while self.at(self.pos).is_some_and(is_space) {
            self.pos += 1;
        }
    }

    /// One attribute, kept on `tag` when it is one the scoring reads; `None` at the end of input.
    fn attribute(&mut self, tag: &mut Tag) -> Option<()> {
        let start = self.pos;
        self.pos += 1;
        loop {
            let b = self.at(self.pos)?;
            if b == b'=' || is_space(b) || b == b'/' || b == b'>' {
                break;
            }
            self.pos += 1;
        }
        let name = self.src.get(start..self.pos)?.to_ascii_lowercase();
        self.skip_spaces();
        let mut value = "";
        if self.at(self.pos)? == b'=' {
            self.pos += 1;
            self.skip_spaces();
            value = match self.at(self.pos)? {
                quote @ (b'"' | b'\'') => {
                    let close = self.find_from(self.pos + 1, if quote == b'"' { "\"" } else { "'" })?;
                    let v = self.src.get(self.pos + 1..close)?;
                    self.pos = close + 1;
                    v
                }
                b'>' => "",
                _ => {
                    let start = self.pos;
                    loop {
                        let b = self.at(self.pos)?;
                        if is_space(b) || b == b'>' {
                            break;
                        }
                        self.pos += 1;
                    }
                    self.src.get(start..self.pos)?
                }
            };
        }
        if !tag.end && tag.attr(&name).is_none() {
            if let Some(kept) = KEPT.iter().find(|k| **k == name) {
                tag.attributes.push((kept, entities::decode_attribute(value)));
            }
        }
        Some(())
    }

    /// Skips the text of a raw-text or escapable raw-text element (`<style>`, `<textarea>`, …) up
    /// to its end tag.
    pub(crate) fn skip_text_of(&mut self, name: &str) {
        let mut from = self.pos;
        while let Some(lt) = self.find_from(from, "</") {
            if self.closes(lt, name) {
                self.pos = lt;
                return;
            }
            from = lt + 2;
        }
        self.pos = self.src.len();
    }

    /// Whether `</name` followed by a space, `/` or `>` starts at `lt`.
    fn closes(&self, lt: usize, name: &str) -> bool {
        let start = lt + 2;
        let matches_name =
            self.bytes().get(start..start + name.len()).is_some_and(|n| n.eq_ignore_ascii_case(name.as_bytes()));
        self.at(lt) == Some(b'<')
            && self.at(lt + 1) == Some(b'/')
            && matches_name
            && self.at(start + name.len()).is_none_or(|b| is_space(b) || b == b'/' || b == b'>')
    }

    /// Ignores the rest of the input (after `<plaintext>`).
    pub(crate) fn stop(&mut self) {
        self.pos = self.src.len();
    }

    /// Skips a `<script>`'s text up to its end tag, following the HTML rules for `<!--` and nested
    /// `<script>` inside script text.
    pub(crate) fn skip_script(&mut self) {
        #[derive(Clone, Copy, PartialEq, Eq)]
        enum State {
            Data,
            Escaped,
            EscapedDash,
            EscapedDashDash,
            Double,
            DoubleDash,
            DoubleDashDash,
        }
        use State::*;
        let mut state = Data;
        let mut i = self.pos;
        while let Some(c) = self.at(i) {
            let escaped = matches!(state, Escaped | EscapedDash | EscapedDashDash);
            let double = matches!(state, Double | DoubleDash | DoubleDashDash);
            match c {
                b'<' if matches!(state, Data) || escaped => {
                    if self.closes(i, "script") {
                        self.pos = i;
                        return;
                    }
                    if state == Data {
                        if self.src.get(i..).is_some_and(|r| r.starts_with("<!--")) {
                            state = EscapedDashDash;
                            i += 4;
                            continue;
                        }
                    } else if let Some(after) = self.script_word(i + 1) {
                        state = Double;
                        i = after;
                        continue;
                    } else {
                        state = Escaped;
                    }
                }
                b'<' if double => {
                    if self.at(i + 1) == Some(b'/') {
                        if let Some(after) = self.script_word(i + 2) {
                            state = Escaped;
                            i = after;
                            continue;
                        }
                    }
                    state = Double;
                }
                b'-' => {
                    state = match state {
                        Data => Data,
                        Escaped => EscapedDash,
                        EscapedDash | EscapedDashDash => EscapedDashDash,
                        Double => DoubleDash,
                        DoubleDash | DoubleDashDash => DoubleDashDash,
                    }
                }
                b'>' if matches!(state, EscapedDashDash | DoubleDashDash) => state = Data,
                _ => {
                    state = match state {
                        Data => Data,
                        Escaped | EscapedDash | EscapedDashDash => Escaped,
                        Double | DoubleDash | DoubleDashDash => Double,
                    }
                }
            }
            i += 1;
        }
        self.pos = self.src.len();
    }

    /// When the word `script` followed by a space, `/` or `>` starts at `at`, where it ends.
    fn script_word(&self, at: usize) -> Option<usize> {
        let word = self.bytes().get(at..at + 6)?;
        let next = self.at(at + 6)?;
        (word.eq_ignore_ascii_case(b"script") && (is_space(next) || next == b'/' || next == b'>')).then_some(at + 6)
    }
}
