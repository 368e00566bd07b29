//! The Subresource Integrity test: whether the page's scripts from other sites carry `integrity`
//! and load over HTTPS.

use crate::outcome::Outcome;
use crate::page::Scripts;
use crate::suffix;
use crate::url::{self, Base, Resolved};

/// Where a script's `src` points, as the scoring sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Src {
    /// A path on the page's own origin (or a URL of another scheme, such as `data:`).
    Relative,
    /// A protocol-relative URL (`//cdn.example/x.js`) left unresolved.
    ProtocolRelative,
    /// An absolute `http:` or `https:` URL, with the registrable domain of its host.
    Absolute { https: bool, domain: Option<String> },
}

/// How a `src` value reads, given the page's base URL.
fn classify(src: &str, base: &Base) -> Src {
    match url::resolve(src, base) {
        Some(Resolved::Http(u)) => Src::Absolute { https: u.https, domain: suffix::registrable_domain(&u.host) },
        Some(Resolved::Other) => Src::Relative,
        None if src.starts_with("//") && src.as_bytes().get(2).is_some_and(|b| *b != b'/') => Src::ProtocolRelative,
        // An `http(s)://` URL that does not parse: the reference fails the scan here; read it as an
        // insecure script from an unknown site.
        None if src.starts_with("http://") || src.starts_with("https://") => {
            Src::Absolute { https: false, domain: None }
        }
        None => Src::Relative,
    }
}

/// Results from best to worst, for keeping the worst one seen.
const ORDER: [Outcome; 6] = [
    Outcome::SriImplementedAndAllScriptsLoadedSecurely,
    Outcome::SriImplementedAndExternalScriptsLoadedSecurely,
    Outcome::SriImplementedButExternalScriptsNotLoadedSecurely,
    Outcome::SriNotImplementedButExternalScriptsLoadedSecurely,
    Outcome::SriNotImplementedAndExternalScriptsNotLoadedSecurely,
    Outcome::SriNotImplementedResponseNotHtml,
];

fn worse(current: Option<Outcome>, new: Outcome) -> Option<Outcome> {
    let rank = |o: Outcome| ORDER.iter().position(|x| *x == o);
    match current {
        Some(old) if rank(new) <= rank(old) => Some(old),
        _ => Some(new),
    }
}

/// Runs the test on the scripts of an HTML page (`None` when the answer is not HTML). `host` is
/// the graded host and `https` whether the page was fetched from an `https:` start URL.
pub(crate) fn test(page: Option<&Scripts>, host: &str, https: bool) -> (Outcome, bool) {
    let Some(page) = page else { return (Outcome::SriNotImplementedResponseNotHtml, true) };
    if page.scripts.is_empty() {
        return (Outcome::SriNotImplementedButNoScriptsLoaded, true);
    }
    let base = page.base.as_deref().map_or(Base::Blank, url::base_of);
    let own_domain = suffix::registrable_domain(host);
    let mut result: Option<Outcome> = None;
    let mut foreign = false;
    for script in &page.scripts {
        let Some(src) = script.src.as_deref() else { continue };
        let integrity = script.integrity.as_deref().is_some_and(|i| !i.is_empty());
        if src.is_empty() && base == Base::Blank {
            continue;
        }
        let (same_origin, secure) = match classify(src, &base) {
            Src::Relative => (true, https),
            Src::ProtocolRelative => (false, false),
            Src::Absolute { https: secure, domain } => (domain == own_domain, secure),
        };
        if same_origin {
            if integrity && secure && result.is_none() {
                result = Some(Outcome::SriImplementedAndAllScriptsLoadedSecurely);
            }
            continue;
        }
        foreign = true;
        result = match (integrity, secure) {
            (true, false) => worse(result, Outcome::SriImplementedButExternalScriptsNotLoadedSecurely),
            (false, true) => worse(result, Outcome::SriNotImplementedButExternalScriptsLoadedSecurely),
            (false, false) => worse(result, Outcome::SriNotImplementedAndExternalScriptsNotLoadedSecurely),
            (true, true) => result,
        };
    }
    let outcome = result.unwrap_or(if foreign {
        Outcome::SriImplementedAndExternalScriptsLoadedSecurely
    } else {
        Outcome::SriNotImplementedButAllScriptsLoadedFromSecureOrigin
    });
    let pass = matches!(
        outcome,
        Outcome::SriImplementedAndAllScriptsLoadedSecurely
            | Outcome::SriImplementedAndExternalScriptsLoadedSecurely
            | Outcome::SriNotImplementedResponseNotHtml
            | Outcome::SriNotImplementedButAllScriptsLoadedFromSecureOrigin
            | Outcome::SriNotImplementedButNoScriptsLoaded
    );
    (outcome, pass)
}
