//! Attacks on Java servers in any value, header or parameter name: serialized Java objects (raw,
//! hex or base64), the classes deserialization gadget chains and expression-language escapes are
//! built from, OGNL expressions (Struts), process spawning through `Runtime`/`ProcessBuilder`, and
//! Spring's class-loader property paths (CVE-2022-22965).

use std::sync::OnceLock;

/// Packages and classes gadget chains, sandbox escapes and JNDI injection are made of. A value
/// naming one of them is probing a Java deserializer or expression evaluator; ordinary text and
/// ordinary Java (`java.lang.String`, `java.util.List`) do not name them.
const CLASSES: &[&str] = &[
    "java.lang.runtime",
    "java.lang.processbuilder",
    "java.lang.process",
    "java.lang.system",
    "java.lang.classloader",
    "java.lang.reflect",
    "java.lang.thread",
    "java.lang.invoke",
    "java.net.urlclassloader",
    "java.net.socket",
    "java.beans.xmldecoder",
    "java.io.objectinputstream",
    "java.io.fileoutputstream",
    "java.io.filewriter",
    "java.rmi.",
    "javax.naming.",
    "javax.script.",
    "javax.management.",
    "javax.xml.transform.templates",
    "sun.misc.unsafe",
    "sun.rmi.",
    "com.sun.jndi.",
    "com.sun.rowset.",
    "com.sun.org.apache.",
    "com.opensymphony.xwork2",
    "org.apache.struts2",
    "org.apache.commons.collections",
    "org.apache.commons.beanutils",
    "org.apache.xalan",
    "org.apache.myfaces",
    "org.apache.tomcat.dbcp",
    "org.apache.naming.factory",
    "org.codehaus.groovy.runtime",
    "org.springframework.beans.factory",
    "org.springframework.context.support",
    "org.springframework.aop",
    "org.hibernate.",
    "com.mchange.v2.c3p0",
    "org.mozilla.javascript",
    "bsh.interpreter",
    "bsh.xthis",
    "clojure.core",
    "clojure.lang",
    "ognl.ognlcontext",
    "com.alibaba.fastjson",
    "com.zaxxer.hikari",
    "org.jboss.",
    "weblogic.",
    "ysoserial",
];

/// Methods that run commands or load code once an expression reaches them.
const CALLS: &[&str] = &[
    "getruntime(",
    ".exec(",
    "processbuilder(",
    ".start()",
    "forname(",
    "getdeclaredmethod(",
    "getmethod(",
    ".invoke(",
    ".newinstance(",
    "defineclass(",
    "loadclass(",
    "getclassloader(",
];

fn classes() -> Option<&'static aho_corasick::AhoCorasick> {
    static M: OnceLock<Option<aho_corasick::AhoCorasick>> = OnceLock::new();
    M.get_or_init(|| crate::matcher(CLASSES)).as_ref()
}

/// Scores a decoded value. Returns the rule that fired, or `None`.
pub fn check(value: &str) -> Option<(&'static str, u32)> {
    let b = value.as_bytes();
    // Java's serialization stream starts with AC ED 00 05 (read as Latin-1 or U+FFFD-less bytes).
    if value.contains("\u{ac}\u{ed}\u{0}\u{5}") || memchr::memmem::find(b, b"\xc2\xac\xc3\xad\x00\x05").is_some() {
        return Some(("java_serialized_object", 9));
    }
    let lower = value.to_ascii_lowercase();
    if let Some(at) = lower.find("aced0005").or_else(|| value.find("rO0AB")) {
        // The stream as hex or as base64 (`rO0AB…`), at the start of a value or a word, long
        // enough to hold an object.
        let starts = at == 0 || !b[at - 1].is_ascii_alphanumeric();
        let run = b[at..].iter().take_while(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'/' | b'=')).count();
        if starts && run >= 16 {
            return Some(("java_serialized_object", 9));
        }
    }
    if lower.contains("#_memberaccess")
        || lower.contains("@ognl.")
        || lower.contains("#context[")
        || lower.contains("(#dm=")
        || lower.contains("%{(#")
        || lower.contains("@java.lang.")
    {
        return Some(("ognl_expression", 9));
    }
    if lower.contains("classloader") && (lower.contains("class.") || lower.contains(".resources")) {
        return Some(("class_loader_access", 9));
    }
    let class = classes().is_some_and(|m| m.is_match(&lower));
    let call = CALLS.iter().any(|c| lower.contains(c));
    if class && call {
        return Some(("java_code_execution", 9));
    }
    if class {
        // A lone class name: a deserializer's type field, a gadget chain's part (`@type`).
        return Some(("java_gadget_class", 8));
    }
    // `Runtime.getRuntime().exec(…)` or `new ProcessBuilder(…).start()` without their package.
    if (lower.contains("getruntime().exec(") || lower.contains("processbuilder(")) && lower.contains('(') {
        return Some(("java_code_execution", 8));
    }
    None
}

/// A parameter name that walks to the class loader: `class.module.classLoader.…` (Spring's
/// data binding, CVE-2022-22965), `class.classLoader…` (Struts, CVE-2014-0094).
pub fn check_key(name: &str) -> Option<(&'static str, u32)> {
    let n = name.to_ascii_lowercase();
    (n.contains("classloader") && (n.starts_with("class.") || n.contains(".class.") || n.contains("[class]")))
        .then_some(("class_loader_access", 9))
}

#[cfg(test)]
mod tests {
    use super::{check, check_key};

    #[test]
    fn java_attacks() {
        for v in [
            "rO0ABXNyABFqYXZhLnV0aWwuSGFzaE1hcAUH2sHDFmDRAwACRgAK",
            "aced0005737200116a6176612e7574696c2e486173684d6170",
            "%{(#_memberAccess['allowStaticMethodAccess']=true).(@java.lang.Runtime@getRuntime().exec('id'))}",
            "<object class=\"java.lang.ProcessBuilder\"><array class=\"java.lang.String\"><string>id</string></array><void method=\"start\"/></object>",
            "{\"@type\":\"com.sun.rowset.JdbcRowSetImpl\",\"dataSourceName\":\"ldap://x/a\"}",
            "org.apache.commons.collections.functors.InvokerTransformer",
            "com.opensymphony.xwork2",
            "Runtime.getRuntime().exec(\"id\")",
        ] {
            assert!(check(v).is_some(), "missed: {v}");
        }
        assert!(check_key("class.module.classLoader.resources.context.parent.pipeline.first.pattern").is_some());
        for v in [
            "I love java.lang.String tricks in interviews",
            "Our Runtime team ships ProcessBuilder wrappers",
            "java.util.List<String> items",
            "rO0ABC",
            "Runtime error at line 3",
        ] {
            assert!(check(v).is_none(), "false positive: {v}");
        }
        assert!(check_key("user.name").is_none());
    }
}
