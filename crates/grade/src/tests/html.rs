use crate::entities::decode_attribute;
use crate::html::Tokenizer;
use crate::page::{meta_of, scripts_of};

fn tags(html: &str) -> Vec<(bool, String, Option<String>)> {
    let mut tokens = Tokenizer::new(html);
    let mut out = Vec::new();
    while let Some(tag) = tokens.next_tag(false) {
        out.push((tag.end, tag.name.clone(), tag.attr("src").map(str::to_owned)));
    }
    out
}

#[test]
fn attributes_quoted_unquoted_and_first_wins() {
    let found = tags(
        r#"<SCRIPT Src="a.js"></script><script src='b.js'><script src=c.js/><script src=d.js src=e.js><script src>"#,
    );
    let srcs: Vec<Option<&str>> = found.iter().filter(|t| !t.0).map(|t| t.2.as_deref()).collect();
    assert_eq!(srcs, [Some("a.js"), Some("b.js"), Some("c.js/"), Some("d.js"), Some("")]);
    assert_eq!(found.first().map(|t| t.1.as_str()), Some("script"));
}

#[test]
fn comments_doctypes_and_bogus_markup() {
    let found = tags("<!DOCTYPE html><!-- <script src=a> --><!--><p><!---><i><?php x ?></a b='>'><!--x--!><b>< c>");
    let names: Vec<&str> = found.iter().map(|t| t.1.as_str()).collect();
    assert_eq!(names, ["p", "i", "a", "b"]);
}

#[test]
fn a_tag_cut_by_the_end_of_input_is_dropped() {
    assert_eq!(tags("<p><script src=\"x").len(), 1);
    assert_eq!(tags("<p><script src=x").len(), 1);
    assert_eq!(tags("<p><script").len(), 1);
}

#[test]
fn character_references() {
    assert_eq!(decode_attribute("a&amp;b&lt;&gt;&quot;&#39;&apos;&#x2F;&#47"), "a&b<>\"''//");
    assert_eq!(
        decode_attribute("&ampx &amp=1 &copy &nosuch; &#; &#x110000; &#128;"),
        "&ampx &amp=1 \u{a9} &nosuch; &#; \u{fffd} \u{20ac}"
    );
}

#[test]
fn script_text_is_skipped() {
    let page =
        scripts_of(r#"<script>if (a < b) { x = "<script src=http://e/x.js>"; }</script><script src="/b.js"></script>"#);
    let srcs: Vec<Option<&str>> = page.scripts.iter().map(|s| s.src.as_deref()).collect();
    assert_eq!(srcs, [None, Some("/b.js")]);
    let escaped = scripts_of("<script><!-- <script> </script> --></script><script src=/c.js></script>");
    assert_eq!(escaped.scripts.len(), 2, "a script inside <!-- <script> in script text does not end it early");
    let ended = scripts_of("<script><!-- x --></script><script src=/c.js></script>");
    assert_eq!(ended.scripts.len(), 2);
}

#[test]
fn meta_tags() {
    let meta = meta_of(
        r#"<meta http-equiv=" Content-Security-Policy " content="default-src 'none'"><meta name=Referrer content=origin><meta name=referrer content=no-referrer><meta name=referrer content="">"#,
    );
    assert_eq!(meta.csp, ["default-src 'none'"]);
    assert_eq!(meta.referrer.as_deref(), Some("no-referrer"), "the last non-empty one");
    let hidden = meta_of(
        "<noscript><meta name=referrer content=origin></noscript><template><meta name=referrer content=x></template>",
    );
    assert_eq!(hidden.referrer, None);
    let both = meta_of(r#"<meta http-equiv="x" name="referrer" content="origin">"#);
    assert_eq!(both.referrer, None, "with http-equiv and content it is not a referrer tag");
    let in_svg = meta_of("<svg><meta name=referrer content=origin></svg>");
    assert_eq!(in_svg.referrer.as_deref(), Some("origin"), "<meta> breaks out of SVG");
}

#[test]
fn base_and_foreign_content() {
    let page = scripts_of("<template><base href=https://t.example/></template><base><base href=https://b.example/><base href=https://c.example/>");
    assert_eq!(page.base.as_deref(), Some("https://b.example/"));
    let svg = scripts_of("<svg><script src=a.js></script><foreignObject><script src=b.js></script></foreignObject></svg><script src=c.js></script>");
    let srcs: Vec<Option<&str>> = svg.scripts.iter().map(|s| s.src.as_deref()).collect();
    assert_eq!(srcs, [None, Some("b.js"), Some("c.js")]);
}
