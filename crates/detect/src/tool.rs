//! Known attack tools, by the User-Agent they send unless told otherwise.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};

pub const TOOLS: &[&str] = &[
    "sqlmap",
    "nikto",
    "nuclei",
    "nmap scripting engine",
    "nmap",
    "masscan",
    "zgrab",
    "gobuster",
    "dirbuster",
    "dirb",
    "wfuzz",
    "ffuf",
    "feroxbuster",
    "hydra",
    "w3af",
    "acunetix",
    "netsparker",
    "openvas",
    "arachni",
    "skipfish",
    "whatweb",
    "wpscan",
    "jorgee",
    "zmeu",
    "havij",
    "commix",
    "xsstrike",
    "joomscan",
    "fimap",
    "burpcollaborator",
    "appscan",
    "webinspect",
    "paros",
    "vega/",
    "httprint",
    "nessus",
    "qualys",
    "metasploit",
    "brutus",
    "webshag",
    "grabber",
    "sqlninja",
    "bsqlbf",
    "pangolin",
    "absinthe",
    "mysqloit",
    "teh forest lobster",
    "morfeus",
    "zollard",
    "muieblackcat",
    "dotdotpwn",
    "x-scan",
    "l9explore",
    "l9tcpid",
    "interactsh",
    "censysinspect",
    "netsystemsresearch",
    "gospider",
    "hakrawler",
    "katana",
    "dalfox",
    "crlfuzz",
    "tplmap",
    "jaeles",
    "osvdb",
    ".nasl",
    "fuzz faster u fool",
    "openvas",
    "burpcollaborator.net",
    "interact.sh",
    "oast.",
];

/// Out-of-band callback domains scanners plant in parameters to detect blind injections.
pub(crate) const OOB: &[&str] = &[
    "burpcollaborator.net",
    "oastify.com",
    "interact.sh",
    "interactsh.com",
    "oast.pro",
    "oast.live",
    "oast.site",
    "oast.online",
    "oast.fun",
    "oast.me",
    "dnslog.cn",
    "ceye.io",
    "requestbin.net",
    "canarytokens.com",
    "xss.ht",
    "bxss.me",
    "pipedream.net",
];

pub fn oob_domain(value: &str) -> Option<(&'static str, u32)> {
    static M: std::sync::OnceLock<Option<AhoCorasick>> = std::sync::OnceLock::new();
    let m = M.get_or_init(|| crate::matcher(OOB)).as_ref()?;
    m.is_match(value).then_some(("oob_callback_domain", 8))
}

pub struct ToolMatcher(Option<AhoCorasick>);

impl ToolMatcher {
    pub fn new() -> Self {
        // The patterns are fixed and small; building does not fail for them.
        let ac =
            AhoCorasickBuilder::new().ascii_case_insensitive(true).match_kind(MatchKind::LeftmostLongest).build(TOOLS);
        ToolMatcher(ac.ok())
    }

    /// The tool's name when the User-Agent names one.
    pub fn check(&self, ua: &str) -> Option<&'static str> {
        self.0.as_ref()?.find(ua).map(|m| TOOLS[m.pattern().as_usize()])
    }
}

impl Default for ToolMatcher {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::ToolMatcher;

    #[test]
    fn tools() {
        let m = ToolMatcher::new();
        assert_eq!(m.check("sqlmap/1.7.2#stable (https://sqlmap.org)"), Some("sqlmap"));
        assert_eq!(m.check("Mozilla/5.00 (Nikto/2.1.6)"), Some("nikto"));
        assert_eq!(m.check("Mozilla/5.0 (Windows NT 10.0; Win64; x64) Nuclei - Open-source project"), Some("nuclei"));
        assert_eq!(m.check("Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0"), None);
        assert_eq!(m.check("curl/8.4.0"), None);
    }
}
