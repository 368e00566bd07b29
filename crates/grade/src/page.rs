//! What the scoring reads from a page: its `<meta>` policies, its `<script>` elements and its
//! `<base>`. A light version of HTML tree building decides which tags count: nothing inside
//! `<template>`, and inside SVG or MathML only foreign elements (whose `<script>` has no `src`),
//! until an HTML integration point (`<foreignObject>`, `<mi>`, …) or a tag that breaks out of
//! foreign content (`<div>`, `<p>`, `<meta>`, …).

use crate::html::{Tag, Tokenizer};
use crate::jsstr;

/// How deep SVG/MathML nesting and `<template>`s are tracked; deeper ones are ignored.
const MAX_DEPTH: usize = 256;

/// Tags that end foreign content.
const BREAKOUT: [&str; 44] = [
    "b",
    "big",
    "blockquote",
    "body",
    "br",
    "center",
    "code",
    "dd",
    "div",
    "dl",
    "dt",
    "em",
    "embed",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "head",
    "hr",
    "i",
    "img",
    "li",
    "listing",
    "menu",
    "meta",
    "nobr",
    "ol",
    "p",
    "pre",
    "ruby",
    "s",
    "small",
    "span",
    "strong",
    "strike",
    "sub",
    "sup",
    "table",
    "tt",
    "u",
    "ul",
    "var",
];

/// The policies a page sets through `<meta>`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Meta {
    /// Each `<meta http-equiv="Content-Security-Policy" content>`.
    pub csp: Vec<String>,
    /// The last `<meta name="referrer" content>`.
    pub referrer: Option<String>,
}

/// A `<script>` element.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Script {
    /// Its `src` attribute as written; `None` when absent (always for SVG and MathML scripts).
    pub src: Option<String>,
    pub integrity: Option<String>,
}

/// A page's scripts and the `href` of its first `<base href>`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Scripts {
    pub scripts: Vec<Script>,
    pub base: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Open {
    Svg,
    Math,
    /// An element of foreign content whose contents are HTML.
    Integration(String),
}

impl Open {
    fn name(&self) -> &str {
        match self {
            Open::Svg => "svg",
            Open::Math => "math",
            Open::Integration(name) => name,
        }
    }
}

/// Walks a page's tags, handing each that counts to `visit` with whether it is an HTML element.
/// With `scripting`, `<noscript>` holds text (as in a browser running scripts); without, markup.
fn walk(html: &str, scripting: bool, mut visit: impl FnMut(&Tag, bool)) {
    let mut tokens = Tokenizer::new(html);
    let mut open: Vec<Open> = Vec::new();
    let mut templates: Vec<usize> = Vec::new();
    while let Some(tag) = tokens.next_tag(matches!(open.last(), Some(Open::Svg | Open::Math))) {
        if tag.end {
            close(&tag.name, &mut open, &mut templates);
            continue;
        }
        if let Some(kind @ (Open::Svg | Open::Math)) = open.last().cloned() {
            if !breaks_out(&tag) {
                if templates.is_empty() {
                    visit(&tag, false);
                }
                if let Some(opened) = foreign_child(&kind, &tag) {
                    push(&mut open, opened);
                }
                continue;
            }
            while matches!(open.last(), Some(Open::Svg | Open::Math)) {
                open.pop();
            }
        }
        if templates.is_empty() {
            visit(&tag, true);
        }
        match tag.name.as_str() {
            "svg" if !tag.self_closing => push(&mut open, Open::Svg),
            "math" if !tag.self_closing => push(&mut open, Open::Math),
            "template" if templates.len() < MAX_DEPTH => templates.push(open.len()),
            "script" => tokens.skip_script(),
            "style" | "xmp" | "iframe" | "noembed" | "noframes" | "textarea" | "title" => {
                tokens.skip_text_of(&tag.name)
            }
            "noscript" if scripting => tokens.skip_text_of("noscript"),
            "plaintext" => tokens.stop(),
            _ => {}
        }
    }
}

fn push(open: &mut Vec<Open>, element: Open) {
    if open.len() < MAX_DEPTH {
        open.push(element);
    }
}

/// What a start tag inside SVG or MathML opens that the walk must track.
fn foreign_child(parent: &Open, tag: &Tag) -> Option<Open> {
    if tag.self_closing {
        return None;
    }
    let name = tag.name.as_str();
    let html_inside = match parent {
        Open::Svg => matches!(name, "foreignobject" | "desc" | "title"),
        Open::Math => {
            matches!(name, "mi" | "mo" | "mn" | "ms" | "mtext")
                || (name == "annotation-xml"
                    && tag.attr("encoding").is_some_and(|e| {
                        e.eq_ignore_ascii_case("text/html") || e.eq_ignore_ascii_case("application/xhtml+xml")
                    }))
        }
        Open::Integration(_) => false,
    };
    match name {
        _ if html_inside => Some(Open::Integration(name.to_owned())),
        "svg" => Some(Open::Svg),
        "math" => Some(Open::Math),
        _ => None,
    }
}

fn breaks_out(tag: &Tag) -> bool {
    BREAKOUT.contains(&tag.name.as_str())
        || (tag.name == "font"
            && (tag.attr("color").is_some() || tag.attr("face").is_some() || tag.attr("size").is_some()))
}

/// An end tag closes the innermost open element of its name, and `</template>` its template.
fn close(name: &str, open: &mut Vec<Open>, templates: &mut Vec<usize>) {
    if name == "template" {
        if let Some(depth) = templates.pop() {
            open.truncate(depth);
        }
        return;
    }
    let floor = templates.last().copied().unwrap_or(0);
    if let Some(at) = open.iter().rposition(|o| o.name() == name) {
        if at >= floor {
            open.truncate(at);
        }
    }
}

/// The `<meta>` policies of a page, read as the Observatory does (as a fragment, scripts on).
pub(crate) fn meta_of(html: &str) -> Meta {
    let mut meta = Meta::default();
    walk(html, true, |tag, is_html| {
        if !is_html || tag.name != "meta" {
            return;
        }
        match (tag.attr("http-equiv"), tag.attr("content")) {
            (Some(equiv), Some(content)) => {
                if jsstr::trim(&equiv.to_lowercase()) == "content-security-policy" && !content.is_empty() {
                    meta.csp.push(content.to_owned());
                }
            }
            (_, content) => {
                let is_referrer = tag.attr("name").is_some_and(|n| jsstr::trim(&n.to_lowercase()) == "referrer");
                if let Some(content) = content.filter(|c| is_referrer && !c.is_empty()) {
                    meta.referrer = Some(content.to_owned());
                }
            }
        }
    });
    meta
}

/// The scripts of a page and its base, read as a document with scripts off.
pub(crate) fn scripts_of(html: &str) -> Scripts {
    let mut found = Scripts::default();
    walk(html, false, |tag, is_html| match tag.name.as_str() {
        "script" => found.scripts.push(Script {
            src: if is_html { tag.attr("src").map(str::to_owned) } else { None },
            integrity: tag.attr("integrity").map(str::to_owned),
        }),
        "base" if is_html && found.base.is_none() => found.base = tag.attr("href").map(str::to_owned),
        _ => {}
    });
    found
}
