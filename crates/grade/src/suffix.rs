//! Registrable domains ("example.co.uk" for "www.example.co.uk"), approximated: the scoring needs
//! them to tell same-site scripts from foreign ones and to reject cookies scoped to a public
//! suffix. Without the full Public Suffix List this knows every top-level domain as a suffix and
//! the common second-level ones below; wildcard and exception rules are not covered.

/// Second-level public suffixes under country or generic top-level domains.
const MULTI_LABEL_SUFFIXES: &[&str] = &[
    "ac.at",
    "co.at",
    "gv.at",
    "or.at",
    "asn.au",
    "com.au",
    "edu.au",
    "gov.au",
    "id.au",
    "net.au",
    "org.au",
    "com.br",
    "edu.br",
    "gov.br",
    "net.br",
    "org.br",
    "ab.ca",
    "bc.ca",
    "on.ca",
    "qc.ca",
    "com.cn",
    "edu.cn",
    "gov.cn",
    "net.cn",
    "org.cn",
    "com.co",
    "edu.co",
    "gov.co",
    "net.co",
    "org.co",
    "com.eg",
    "com.es",
    "edu.es",
    "gob.es",
    "nom.es",
    "org.es",
    "com.gr",
    "edu.gr",
    "gov.gr",
    "com.hk",
    "edu.hk",
    "gov.hk",
    "net.hk",
    "org.hk",
    "ac.id",
    "co.id",
    "go.id",
    "or.id",
    "web.id",
    "ac.il",
    "co.il",
    "gov.il",
    "org.il",
    "ac.in",
    "co.in",
    "edu.in",
    "firm.in",
    "gen.in",
    "gov.in",
    "ind.in",
    "net.in",
    "org.in",
    "res.in",
    "ac.jp",
    "ad.jp",
    "co.jp",
    "ed.jp",
    "go.jp",
    "gr.jp",
    "lg.jp",
    "ne.jp",
    "or.jp",
    "co.ke",
    "or.ke",
    "ac.kr",
    "co.kr",
    "go.kr",
    "ne.kr",
    "or.kr",
    "com.mx",
    "edu.mx",
    "gob.mx",
    "net.mx",
    "org.mx",
    "com.my",
    "edu.my",
    "gov.my",
    "net.my",
    "org.my",
    "com.ng",
    "edu.ng",
    "gov.ng",
    "ac.nz",
    "co.nz",
    "geek.nz",
    "govt.nz",
    "net.nz",
    "org.nz",
    "com.pe",
    "com.ph",
    "edu.ph",
    "gov.ph",
    "com.pk",
    "edu.pk",
    "gov.pk",
    "com.pl",
    "net.pl",
    "org.pl",
    "com.pt",
    "edu.pt",
    "gov.pt",
    "com.sa",
    "edu.sa",
    "gov.sa",
    "com.sg",
    "edu.sg",
    "gov.sg",
    "net.sg",
    "org.sg",
    "ac.th",
    "co.th",
    "go.th",
    "in.th",
    "or.th",
    "com.tr",
    "edu.tr",
    "gov.tr",
    "net.tr",
    "org.tr",
    "com.tw",
    "edu.tw",
    "gov.tw",
    "net.tw",
    "org.tw",
    "com.ua",
    "edu.ua",
    "gov.ua",
    "net.ua",
    "org.ua",
    "ac.uk",
    "co.uk",
    "gov.uk",
    "ltd.uk",
    "me.uk",
    "net.uk",
    "nhs.uk",
    "org.uk",
    "plc.uk",
    "police.uk",
    "sch.uk",
    "com.uy",
    "edu.uy",
    "com.ve",
    "com.vn",
    "edu.vn",
    "gov.vn",
    "net.vn",
    "ac.za",
    "co.za",
    "gov.za",
    "net.za",
    "org.za",
];

/// Top-level domains reserved for special use, which cookies may be scoped to.
const SPECIAL_USE: [&str; 5] = ["local", "example", "invalid", "localhost", "test"];

/// Whether `host` is an IPv4 or IPv6 address.
pub(crate) fn is_ip(host: &str) -> bool {
    if host.starts_with('[') || host.contains(':') {
        return true;
    }
    let parts: Vec<&str> = host.split('.').collect();
    parts.len() == 4 && parts.iter().all(|p| !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()))
}

/// The registrable domain of `host` (its public suffix plus one label); `None` for an IP address
/// or a host that is itself a public suffix, such as `localhost` or `co.uk`.
pub(crate) fn registrable_domain(host: &str) -> Option<String> {
    let host = host.to_lowercase();
    if host.is_empty() || is_ip(&host) {
        return None;
    }
    let labels: Vec<&str> = host.split('.').collect();
    let suffix_labels = match labels.as_slice() {
        [.., second, top] if MULTI_LABEL_SUFFIXES.contains(&format!("{second}.{top}").as_str()) => 2,
        _ => 1,
    };
    if labels.len() <= suffix_labels || labels.iter().any(|l| l.is_empty()) {
        return None;
    }
    Some(labels.get(labels.len() - suffix_labels - 1..)?.join("."))
}

/// Whether a cookie may be scoped to `domain` (a `Domain` attribute): not a public suffix, unless
/// under a special-use top-level domain, and not an IPv4 address.
pub(crate) fn cookie_domain_allowed(domain: &str) -> bool {
    let labels: Vec<&str> = domain.split('.').collect();
    if let Some(top) = labels.last() {
        if SPECIAL_USE.contains(top) && (labels.len() > 1 || matches!(*top, "localhost" | "invalid")) {
            return true;
        }
    }
    registrable_domain(domain).is_some() || domain.contains(':')
}
