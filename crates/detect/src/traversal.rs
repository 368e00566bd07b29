//! Path traversal and local file inclusion: `../` sequences (after decoding, with `\` as `/`),
//! absolute paths to well-known system files, wrappers that read files, NUL truncation.

const FILES: &[&str] = &[
    "/etc/passwd",
    "/etc/shadow",
    "/etc/hosts",
    "/etc/group",
    "/etc/issue",
    "/etc/hostname",
    "/etc/security/",
    "/etc/mysql/",
    "/etc/httpd/",
    "/etc/apache2/",
    "/etc/nginx/",
    "/proc/self/",
    "/proc/version",
    "/proc/cpuinfo",
    "/var/log/",
    "/root/",
    "/.ssh/",
    "/.bash_history",
    "/.aws/credentials",
    "win.ini",
    "boot.ini",
    "system.ini",
    "/windows/system32",
    "c:/windows",
    "c:/winnt",
    "c:/boot.ini",
    "/inetpub/",
    "web.config",
    "/windows/repair/",
    "/.htpasswd",
    "/.env",
    "/wp-config.php",
    "web-inf/",
    "global.asa",
    "ntuser.dat",
];

/// Files whose name alone, anywhere in a value, means a read attempt.
const STRONG: &[&str] = &[
    "/etc/passwd",
    "/etc/shadow",
    "/proc/self/",
    "win.ini",
    "boot.ini",
    "web-inf/web.xml",
    "ntuser.dat",
    "global.asa",
    "/etc/hosts",
];

const WRAPPERS: &[&str] =
    &["php://filter", "php://input", "expect://", "zip://", "phar://", "data://text", "file:/", "jar:file:"];

/// Checks a decoded value (or a normalised path when `is_path`).
pub fn check(value: &str, is_path: bool) -> Option<(&'static str, u32)> {
    let b = value.as_bytes();
    if !b.iter().any(|c| matches!(c, b'/' | b'\\' | b':')) && memchr::memmem::find(b, b"..").is_none() {
        // No separator and no `..`: only a bare Windows file name could still matter.
        let bare = ["win.ini", "boot.ini", "system.ini", "web.config", "global.asa", "ntuser.dat"];
        if !b.contains(&b'.') || !bare.iter().any(|f| value.to_ascii_lowercase().contains(f)) {
            return None;
        }
    }
    let lower = value.to_ascii_lowercase().replace('\\', "/");
    let dots = count_dotdot(&lower);
    if dots >= 2 || (dots >= 1 && !is_path) {
        return Some(("dot_dot_slash", if dots >= 2 { 9 } else { 7 }));
    }
    if !is_path && STRONG.iter().any(|f| lower.contains(f)) {
        return Some(("system_file", 8));
    }
    if lower.contains(':') && WRAPPERS.iter().any(|w| lower.contains(w)) {
        return Some(("file_wrapper", 8));
    }
    if !is_path || dots >= 1 {
        if let Some(f) = FILES.iter().find(|f| lower.contains(**f)) {
            let anchored = lower.starts_with(f.trim_start_matches('/')) || lower.starts_with(f) || f.ends_with(".ini");
            if anchored || dots >= 1 || lower.starts_with('/') || lower.contains("file:") {
                return Some(("system_file", 8));
            }
        }
    } else if dots == 1 {
        return Some(("dot_dot_slash", 7));
    }
    None
}

/// `..` as a whole path segment: `../`, `/..`, `..` alone. Also `....//` style (collapses to `../`).
fn count_dotdot(s: &str) -> usize {
    let b = s.as_bytes();
    let mut n = 0;
    let mut i = 0;
    while let Some(p) = memchr::memmem::find(&b[i..], b"..") {
        let at = i + p;
        let mut end = at + 2;
        while end < b.len() && b[end] == b'.' {
            end += 1;
        }
        let before = at == 0 || matches!(b[at - 1], b'/' | b';' | b'=' | b' ' | b'"' | b'\'');
        let after = end == b.len() || matches!(b[end], b'/' | b';' | b'%' | b'\0' | b'?');
        if before && after && (end < b.len() || at > 0) {
            n += 1;
        }
        i = end;
    }
    n
}

#[cfg(test)]
mod tests {
    use super::check;

    #[test]
    fn traversal() {
        assert!(check("../../etc/passwd", false).is_some());
        assert!(check("..\\..\\windows\\win.ini", false).is_some());
        assert!(check("/etc/passwd", false).is_some());
        assert!(check("php://filter/convert.base64-encode/resource=index", false).is_some());
        assert!(check("/static/../../app.js", true).is_some());
        assert!(check("report.pdf", false).is_none());
        assert!(check("1.2.3", false).is_none());
        assert!(check("wait...", false).is_none());
        assert!(check("/docs/a..b", true).is_none());
    }
}
