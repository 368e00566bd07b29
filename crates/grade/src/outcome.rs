//! Every result a test can give, with its name, score modifier and plain-text explanation.

/// One result of one test (the Observatory calls them expectations).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[allow(missing_docs)]
pub enum Outcome {
    CspImplementedWithNoUnsafeDefaultSrcNone,
    CspImplementedWithNoUnsafe,
    CspImplementedWithUnsafeInlineInStyleSrcOnly,
    CspImplementedWithInsecureSchemeInPassiveContentOnly,
    CspImplementedWithUnsafeEval,
    CspImplementedWithUnsafeInline,
    CspImplementedWithInsecureScheme,
    CspHeaderInvalid,
    CspNotImplemented,
    CspNotImplementedButReportingEnabled,
    CspImplementedButDuplicateDirectives,
    SriImplementedAndAllScriptsLoadedSecurely,
    SriImplementedAndExternalScriptsLoadedSecurely,
    SriImplementedButExternalScriptsNotLoadedSecurely,
    SriNotImplementedAndExternalScriptsNotLoadedSecurely,
    SriNotImplementedButAllScriptsLoadedFromSecureOrigin,
    SriNotImplementedButExternalScriptsLoadedSecurely,
    SriNotImplementedButNoScriptsLoaded,
    SriNotImplementedResponseNotHtml,
    HtmlNotParseable,
    HstsHeaderInvalid,
    HstsImplementedMaxAgeAtLeastSixMonths,
    HstsImplementedMaxAgeLessThanSixMonths,
    HstsInvalidCert,
    HstsNotImplementedNoHttps,
    HstsNotImplemented,
    HstsPreloaded,
    CookiesAnticsrfWithoutSamesiteFlag,
    CookiesNotFound,
    CookiesSamesiteFlagInvalid,
    CookiesSecureWithHttponlySessionsAndSamesite,
    CookiesSecureWithHttponlySessions,
    CookiesSessionWithoutHttponlyFlag,
    CookiesSessionWithoutSecureFlagButProtectedByHsts,
    CookiesSessionWithoutSecureFlag,
    CookiesWithoutSecureFlagButProtectedByHsts,
    CookiesWithoutSecureFlag,
    XFrameOptionsAllowFromOrigin,
    XFrameOptionsHeaderInvalid,
    XFrameOptionsImplementedViaCsp,
    XFrameOptionsNotImplemented,
    XFrameOptionsSameoriginOrDeny,
    RedirectionToHttps,
    RedirectionNotToHttps,
    RedirectionNotToHttpsOnInitialRedirection,
    RedirectionMissing,
    RedirectionNotNeededNoHttp,
    RedirectionOffHostFromHttp,
    RedirectionInvalidCert,
    RedirectionAllRedirectsPreloaded,
    ReferrerPolicyPrivate,
    ReferrerPolicyUnsafe,
    ReferrerPolicyNotImplemented,
    ReferrerPolicyHeaderInvalid,
    XContentTypeOptionsNosniff,
    XContentTypeOptionsNotImplemented,
    XContentTypeOptionsHeaderInvalid,
    CorsNotImplemented,
    CorsImplementedWithPublicAccess,
    CorsImplementedWithRestrictedAccess,
    CorsImplementedWithUniversalAccess,
    CorpNotImplemented,
    CorpImplementedWithSameOrigin,
    CorpImplementedWithSameSite,
    CorpImplementedWithCrossOrigin,
    CorpHeaderInvalid,
}

struct Row {
    name: &'static str,
    modifier: i64,
    description: &'static str,
    recommendation: &'static str,
}

const fn row(name: &'static str, modifier: i64, description: &'static str, recommendation: &'static str) -> Row {
    Row { name, modifier, description, recommendation }
}

const SET_UP_HSTS: &str = "Set the Secure flag on cookies, and set up HSTS.";
const SAMESITE_STRICT_OR_LAX: &str = "Set SameSite to Strict or Lax.";
const FRAME_ANCESTORS: &str = "Use the CSP frame-ancestors directive.";
const REDIRECT_SAME_HOST_FIRST: &str =
    "Redirect to the same host over HTTPS first, then on to the final host over HTTPS.";
const REFERRER_MINIMUM: &str = "Use strict-origin-when-cross-origin at least.";
const NOSNIFF: &str = "Set X-Content-Type-Options to nosniff.";
const VALID_CERT: &str = "Install a valid TLS certificate (for instance from Let's Encrypt or your cloud provider).";
const CSP_DOCS: &str = "Add a Content-Security-Policy header (see MDN's Content Security Policy documentation).";

impl Outcome {
    fn row(self) -> Row {
        use Outcome::*;
        match self {
            CspImplementedWithNoUnsafeDefaultSrcNone => row(
                "csp-implemented-with-no-unsafe-default-src-none",
                10,
                "A Content Security Policy is set with default-src 'none' and nothing unsafe.",
                "",
            ),
            CspImplementedWithNoUnsafe => row(
                "csp-implemented-with-no-unsafe",
                5,
                "A Content Security Policy is set without 'unsafe-inline' or 'unsafe-eval'.",
                "Set default-src to 'none'.",
            ),
            CspImplementedWithUnsafeInlineInStyleSrcOnly => row(
                "csp-implemented-with-unsafe-inline-in-style-src-only",
                0,
                "A Content Security Policy is set, but style-src allows unsafe sources ('unsafe-inline', data: or overly broad sources).",
                "Lock down style-src: remove 'unsafe-inline', data: and broad sources.",
            ),
            CspImplementedWithInsecureSchemeInPassiveContentOnly => row(
                "csp-implemented-with-insecure-scheme-in-passive-content-only",
                -10,
                "A Content Security Policy is set, but this HTTPS site lets images or media load over HTTP.",
                "Load images and media over HTTPS, and forbid HTTP in img-src, media-src or default-src.",
            ),
            CspImplementedWithUnsafeEval => row(
                "csp-implemented-with-unsafe-eval",
                -10,
                "A Content Security Policy is set, but it allows 'unsafe-eval'.",
                "Stop using eval() in the code, then remove 'unsafe-eval' from the policy.",
            ),
            CspImplementedWithUnsafeInline => row(
                "csp-implemented-with-unsafe-inline",
                -20,
                "A Content Security Policy is set unsafely: script-src allows 'unsafe-inline' or data:, or script-src or object-src allow overly broad sources or are not restricted at all.",
                "Remove 'unsafe-inline' and data: from script-src and broad sources from script-src and object-src, and make sure both are set.",
            ),
            CspImplementedWithInsecureScheme => row(
                "csp-implemented-with-insecure-scheme",
                -20,
                "A Content Security Policy is set, but this HTTPS site lets resources load over HTTP.",
                "Load resources over HTTPS and remove HTTP sources from the policy.",
            ),
            CspHeaderInvalid => row(
                "csp-header-invalid",
                -25,
                "The Content Security Policy cannot be parsed.",
                "Check the policy's syntax, for instance with Google's CSP Evaluator.",
            ),
            CspNotImplemented => {
                row("csp-not-implemented", -25, "No Content Security Policy is set.", CSP_DOCS)
            }
            CspNotImplementedButReportingEnabled => row(
                "csp-not-implemented-but-reporting-enabled",
                -25,
                "Only a report-only Content Security Policy (Content-Security-Policy-Report-Only) is set.",
                "Enforce a policy with a Content-Security-Policy header.",
            ),
            CspImplementedButDuplicateDirectives => row(
                "csp-implemented-but-duplicate-directives",
                0,
                "A Content Security Policy is set, but it repeats directives.",
                "Remove the repeated directives from the policy.",
            ),
            _ => self.row_sri_hsts_cookies(),
        }
    }

    fn row_sri_hsts_cookies(self) -> Row {
        use Outcome::*;
        match self {
            SriImplementedAndAllScriptsLoadedSecurely => row(
                "sri-implemented-and-all-scripts-loaded-securely",
                5,
                "Subresource Integrity is used and all scripts load from a similar origin.",
                "",
            ),
            SriImplementedAndExternalScriptsLoadedSecurely => row(
                "sri-implemented-and-external-scripts-loaded-securely",
                5,
                "Subresource Integrity is used and all scripts load securely.",
                "",
            ),
            SriImplementedButExternalScriptsNotLoadedSecurely => row(
                "sri-implemented-but-external-scripts-not-loaded-securely",
                -20,
                "Subresource Integrity is used, but external scripts load over HTTP or from protocol-relative URLs (src=\"//...\").",
                "Load external scripts over HTTPS.",
            ),
            SriNotImplementedAndExternalScriptsNotLoadedSecurely => row(
                "sri-not-implemented-and-external-scripts-not-loaded-securely",
                -50,
                "Subresource Integrity is not used, and external scripts load over HTTP or from protocol-relative URLs (src=\"//...\").",
                "Load external scripts over HTTPS and give them integrity attributes.",
            ),
            SriNotImplementedButAllScriptsLoadedFromSecureOrigin => row(
                "sri-not-implemented-but-all-scripts-loaded-from-secure-origin",
                0,
                "Subresource Integrity is not used, but all scripts load from a similar origin.",
                "Add integrity attributes for bonus points.",
            ),
            SriNotImplementedButExternalScriptsLoadedSecurely => row(
                "sri-not-implemented-but-external-scripts-loaded-securely",
                -5,
                "Subresource Integrity is not used, but all external scripts load over HTTPS.",
                "Give external scripts integrity attributes.",
            ),
            SriNotImplementedButNoScriptsLoaded => row(
                "sri-not-implemented-but-no-scripts-loaded",
                0,
                "Subresource Integrity is not needed: the page has no script tags.",
                "",
            ),
            SriNotImplementedResponseNotHtml => row(
                "sri-not-implemented-response-not-html",
                0,
                "Subresource Integrity is only needed for HTML, and the answer is not HTML.",
                "",
            ),
            HtmlNotParseable => row(
                "html-not-parseable",
                -20,
                "The answer claims to be HTML but cannot be parsed.",
                "Make sure the server returns valid HTML.",
            ),
            _ => self.row_hsts_cookies(),
        }
    }

    fn row_hsts_cookies(self) -> Row {
        use Outcome::*;
        match self {
            HstsHeaderInvalid => row(
                "hsts-header-invalid",
                -20,
                "The Strict-Transport-Security header cannot be recognized.",
                "Fix the header (see MDN's Strict-Transport-Security documentation).",
            ),
            HstsImplementedMaxAgeAtLeastSixMonths => row(
                "hsts-implemented-max-age-at-least-six-months",
                0,
                "Strict-Transport-Security is set with a max-age of at least six months.",
                "Consider preloading: add preload and includeSubDomains, set max-age to at least 31536000 (one year), and submit the site to https://hstspreload.org/.",
            ),
            HstsImplementedMaxAgeLessThanSixMonths => row(
                "hsts-implemented-max-age-less-than-six-months",
                -10,
                "Strict-Transport-Security is set with a max-age under six months.",
                "Raise max-age to at least six months (15552000).",
            ),
            HstsInvalidCert => row(
                "hsts-invalid-cert",
                -20,
                "Strict-Transport-Security cannot take effect: the site's certificate chain is invalid.",
                VALID_CERT,
            ),
            HstsNotImplementedNoHttps => row(
                "hsts-not-implemented-no-https",
                -20,
                "Strict-Transport-Security cannot be set: the site is not available over HTTPS.",
                "Serve the site over HTTPS.",
            ),
            HstsNotImplemented => row(
                "hsts-not-implemented",
                -20,
                "The Strict-Transport-Security header is not set.",
                "Add Strict-Transport-Security, starting with a short max-age and raising it.",
            ),
            HstsPreloaded => row(
                "hsts-preloaded",
                5,
                "The site is on the HSTS preload list.",
                "",
            ),
            _ => self.row_cookies(),
        }
    }

    fn row_cookies(self) -> Row {
        use Outcome::*;
        match self {
            CookiesAnticsrfWithoutSamesiteFlag => row(
                "cookies-anticsrf-without-samesite-flag",
                -20,
                "An anti-CSRF cookie is set without the SameSite flag.",
                SAMESITE_STRICT_OR_LAX,
            ),
            CookiesNotFound => row("cookies-not-found", 0, "No cookies were set.", ""),
            CookiesSamesiteFlagInvalid => row(
                "cookies-samesite-flag-invalid",
                -20,
                "A cookie's SameSite flag is malformed, or is None without the Secure flag.",
                SAMESITE_STRICT_OR_LAX,
            ),
            CookiesSecureWithHttponlySessionsAndSamesite => row(
                "cookies-secure-with-httponly-sessions-and-samesite",
                5,
                "All cookies are Secure, session cookies are HttpOnly, and all cookies set SameSite.",
                "",
            ),
            CookiesSecureWithHttponlySessions => row(
                "cookies-secure-with-httponly-sessions",
                0,
                "All cookies are Secure and session cookies are HttpOnly.",
                "Set SameSite on the cookies.",
            ),
            CookiesSessionWithoutHttponlyFlag => row(
                "cookies-session-without-httponly-flag",
                -30,
                "A session cookie is set without the HttpOnly flag.",
                "Set the HttpOnly flag on session cookies.",
            ),
            CookiesSessionWithoutSecureFlagButProtectedByHsts => row(
                "cookies-session-without-secure-flag-but-protected-by-hsts",
                -10,
                "A session cookie is set without the Secure flag, but HSTS keeps it off plain HTTP.",
                "Set the Secure flag on cookies.",
            ),
            CookiesSessionWithoutSecureFlag => row(
                "cookies-session-without-secure-flag",
                -40,
                "A session cookie is set without the Secure flag, or over HTTP.",
                SET_UP_HSTS,
            ),
            CookiesWithoutSecureFlagButProtectedByHsts => row(
                "cookies-without-secure-flag-but-protected-by-hsts",
                -5,
                "Cookies are set without the Secure flag, but HSTS keeps them off plain HTTP.",
                "Set the Secure flag on cookies.",
            ),
            CookiesWithoutSecureFlag => row(
                "cookies-without-secure-flag",
                -20,
                "Cookies are set without the Secure flag, or over HTTP.",
                SET_UP_HSTS,
            ),
            _ => self.row_framing_redirection(),
        }
    }

    fn row_framing_redirection(self) -> Row {
        use Outcome::*;
        match self {
            XFrameOptionsAllowFromOrigin => row(
                "x-frame-options-allow-from-origin",
                0,
                "X-Frame-Options uses the ALLOW-FROM directive.",
                FRAME_ANCESTORS,
            ),
            XFrameOptionsHeaderInvalid => row(
                "x-frame-options-header-invalid",
                -20,
                "The X-Frame-Options header cannot be recognized.",
                FRAME_ANCESTORS,
            ),
            XFrameOptionsImplementedViaCsp => row(
                "x-frame-options-implemented-via-csp",
                5,
                "Framing is controlled by the CSP frame-ancestors directive.",
                "",
            ),
            XFrameOptionsNotImplemented => {
                row("x-frame-options-not-implemented", -20, "The X-Frame-Options header is not set.", FRAME_ANCESTORS)
            }
            XFrameOptionsSameoriginOrDeny => row(
                "x-frame-options-sameorigin-or-deny",
                0,
                "X-Frame-Options is set to SAMEORIGIN or DENY.",
                FRAME_ANCESTORS,
            ),
            RedirectionToHttps => {
                row("redirection-to-https", 0, "HTTP first redirects to HTTPS on the same host and ends on HTTPS.", "")
            }
            RedirectionNotToHttps => row(
                "redirection-not-to-https",
                -20,
                "HTTP redirects, but the final destination is not an HTTPS URL.",
                REDIRECT_SAME_HOST_FIRST,
            ),
            RedirectionNotToHttpsOnInitialRedirection => row(
                "redirection-not-to-https-on-initial-redirection",
                -10,
                "HTTP ends up on HTTPS, but its first redirect is to another HTTP URL.",
                REDIRECT_SAME_HOST_FIRST,
            ),
            RedirectionMissing => {
                row("redirection-missing", -20, "HTTP does not redirect to HTTPS.", REDIRECT_SAME_HOST_FIRST)
            }
            RedirectionNotNeededNoHttp => row(
                "redirection-not-needed-no-http",
                0,
                "The site does not answer over HTTP, so no redirection is needed.",
                "",
            ),
            RedirectionOffHostFromHttp => row(
                "redirection-off-host-from-http",
                -5,
                "HTTP first redirects to HTTPS on a different host, so that host's HSTS is never set for this one.",
                "Redirect to the same host over HTTPS first (HSTS is ignored over HTTP), then on to the final host.",
            ),
            RedirectionInvalidCert => row(
                "redirection-invalid-cert",
                -20,
                "An invalid certificate chain was met while following the redirects.",
                VALID_CERT,
            ),
            RedirectionAllRedirectsPreloaded => row(
                "redirection-all-redirects-preloaded",
                0,
                "Every host redirected through is on the HSTS preload list.",
                "",
            ),
            _ => self.row_rest(),
        }
    }

    fn row_rest(self) -> Row {
        use Outcome::*;
        match self {
            ReferrerPolicyPrivate => row(
                "referrer-policy-private",
                5,
                "Referrer-Policy is set to no-referrer, same-origin, strict-origin or strict-origin-when-cross-origin.",
                "",
            ),
            ReferrerPolicyUnsafe => row(
                "referrer-policy-unsafe",
                -5,
                "Referrer-Policy is set unsafely, to origin, origin-when-cross-origin, unsafe-url or no-referrer-when-downgrade.",
                REFERRER_MINIMUM,
            ),
            ReferrerPolicyNotImplemented => row(
                "referrer-policy-not-implemented",
                0,
                "The Referrer-Policy header is not set.",
                REFERRER_MINIMUM,
            ),
            ReferrerPolicyHeaderInvalid => row(
                "referrer-policy-header-invalid",
                -5,
                "The Referrer-Policy header cannot be recognized.",
                REFERRER_MINIMUM,
            ),
            XContentTypeOptionsNosniff => {
                row("x-content-type-options-nosniff", 0, "X-Content-Type-Options is set to nosniff.", "")
            }
            XContentTypeOptionsNotImplemented => row(
                "x-content-type-options-not-implemented",
                -5,
                "The X-Content-Type-Options header is not set.",
                NOSNIFF,
            ),
            XContentTypeOptionsHeaderInvalid => row(
                "x-content-type-options-header-invalid",
                -5,
                "The X-Content-Type-Options header cannot be recognized.",
                NOSNIFF,
            ),
            CorsNotImplemented => row(
                "cross-origin-resource-sharing-not-implemented",
                0,
                "Content is not shared with other origins through CORS.",
                "",
            ),
            CorsImplementedWithPublicAccess => row(
                "cross-origin-resource-sharing-implemented-with-public-access",
                0,
                "Public content is shared with every origin (Access-Control-Allow-Origin: *).",
                "",
            ),
            CorsImplementedWithRestrictedAccess => row(
                "cross-origin-resource-sharing-implemented-with-restricted-access",
                0,
                "Content is shared through CORS, but only with specific origins.",
                "",
            ),
            CorsImplementedWithUniversalAccess => row(
                "cross-origin-resource-sharing-implemented-with-universal-access",
                -50,
                "Content is shared through CORS with any origin, credentials included, which can allow cross-site request forgery.",
                "Allow credentialed access only from a fixed list of origins instead of echoing Origin; for public content send Access-Control-Allow-Origin: * without Access-Control-Allow-Credentials; otherwise send neither.",
            ),
            CorpNotImplemented => row(
                "corp-not-implemented",
                0,
                "Cross-Origin-Resource-Policy is not set (which means cross-origin).",
                "",
            ),
            CorpImplementedWithSameOrigin => row(
                "corp-implemented-with-same-origin",
                10,
                "Cross-Origin-Resource-Policy keeps resources from leaking into cross-origin contexts.",
                "",
            ),
            CorpImplementedWithSameSite => row(
                "corp-implemented-with-same-site",
                10,
                "Cross-Origin-Resource-Policy keeps resources from leaking into cross-site contexts.",
                "",
            ),
            CorpImplementedWithCrossOrigin => row(
                "corp-implemented-with-cross-origin",
                0,
                "Cross-Origin-Resource-Policy is set, but allows cross-origin use.",
                "",
            ),
            CorpHeaderInvalid => row(
                "corp-header-invalid",
                -5,
                "The Cross-Origin-Resource-Policy header cannot be recognized.",
                "Set Cross-Origin-Resource-Policy to same-origin, same-site or cross-origin.",
            ),
            _ => row("", 0, "", ""),
        }
    }

    /// The result's name as the Observatory spells it, e.g. `csp-implemented-with-no-unsafe`.
    pub fn as_str(self) -> &'static str {
        self.row().name
    }

    /// What the result adds to the score (negative for a penalty).
    pub fn modifier(self) -> i64 {
        self.row().modifier
    }

    /// What the result means, in one plain-text sentence.
    pub fn description(self) -> &'static str {
        self.row().description
    }

    /// What to do about it, in plain text; empty when nothing.
    pub fn recommendation(self) -> &'static str {
        self.row().recommendation
    }
}
