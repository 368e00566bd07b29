//! Path traversal and local file inclusion: `../` sequences (after decoding, with `\` as `/`),
//! absolute paths to well-known system files, wrappers that read files, NUL truncation.

/// Where a path must not lead: system files and directories of Unix and Windows, and the
/// credentials and configuration of users and apps. Matched at a segment start in a value that
/// is itself a path (no white space), or anywhere after a `..`.
const FILES: &[&str] = &[
    "/etc/passwd",
    "/etc/shadow",
    "/etc/hosts",
    "/etc/group",
    "/etc/gshadow",
    "/etc/issue",
    "/etc/hostname",
    "/etc/sudoers",
    "/etc/crontab",
    "/etc/cron.",
    "/etc/fstab",
    "/etc/profile",
    "/etc/environment",
    "/etc/resolv.conf",
    "/etc/motd",
    "/etc/os-release",
    "/etc/lsb-release",
    "/etc/redhat-release",
    "/etc/my.cnf",
    "/etc/apt/",
    "/etc/ssh/",
    "/etc/ssl/private",
    "/etc/security/",
    "/etc/mysql/",
    "/etc/httpd/",
    "/etc/apache2/",
    "/etc/nginx/",
    "/etc/php",
    "/etc/krb5",
    "/proc/self/",
    "/proc/version",
    "/proc/cpuinfo",
    "/proc/meminfo",
    "/proc/interrupts",
    "/proc/mounts",
    "/proc/net/",
    "/proc/sched_debug",
    "/proc/1/",
    "/sys/class/",
    "/sys/kernel/",
    "/sys/devices/",
    "/sys/module/",
    "/sys/firmware/",
    "/sys/fs/",
    "/sys/bus/",
    "/sys/block/",
    "/var/log/",
    "/var/adm/",
    "/var/mail/",
    "/var/spool/",
    "/var/lib/mysql",
    "/root/",
    "/.ssh/",
    ".ssh/id_",
    ".ssh/authorized_keys",
    ".ssh/known_hosts",
    "/.bash_history",
    "/.bashrc",
    "/.zsh_history",
    "/.mysql_history",
    "/.aws/",
    ".aws/credentials",
    "/.docker/",
    ".docker/config.json",
    ".docker/secrets",
    "/.kube/",
    ".kube/config",
    "/.git/",
    ".git/config",
    "/.npmrc",
    "/.netrc",
    "/.pgpass",
    "/.gnupg/",
    "/run/secrets/",
    "win.ini",
    "boot.ini",
    "system.ini",
    "/windows/system32",
    "/windows/repair/",
    "/windows/panther/",
    "c:/windows",
    "c:/winnt",
    "c:/boot.ini",
    "c:/inetpub",
    "/inetpub/",
    "web.config",
    "/.htpasswd",
    "/.htaccess",
    "/.env",
    "/wp-config.php",
    "web-inf/",
    "meta-inf/",
    "global.asa",
    "ntuser.dat",
];

/// Files whose name alone, anywhere in a value (prose included), means a read attempt.
const STRONG: &[&str] = &[
    "/etc/passwd",
    "/etc/shadow",
    "/proc/self/",
    "win.ini",
    "boot.ini",
    "web-inf/web.xml",
    "ntuser.dat",
    "global.asa",
];

const WRAPPERS: &[&str] = &[
    "php://filter",
    "php://input",
    "php://fd",
    "expect://",
    "zip://",
    "phar://",
    "glob://",
    "compress.zlib://",
    "compress.bzip2://",
    "data://text",
    "file:/",
    "jar:file:",
    "netdoc:/",
];

/// The value with separators and dot tricks made plain: lower case, `\` as `/`, `..;/` (a Java
/// path parameter) as `../`, `....//` and other runs of dots as `..`, repeated slashes as one,
/// and the NUL that ends a C string as the end.
pub fn plain(value: &str) -> String {
    let mut s = value.to_ascii_lowercase().replace('\\', "/");
    if let Some(nul) = s.find('\0') {
        s.truncate(nul);
    }
    let s = s.replace("..;/", "../").replace(";/", "/");
    let mut out = String::with_capacity(s.len());
    let (mut before, mut last) = ('\0', '\0');
    for c in s.chars() {
        // `a//b` is `a/b`; a scheme's `://` stays.
        if c == '/' && last == '/' && before != ':' {
            continue;
        }
        out.push(c);
        (before, last) = (last, c);
    }
    out
}

/// Whether the value is itself a path (a file name, not prose that mentions one).
fn pathlike(s: &str) -> bool {
    !s.trim().contains(char::is_whitespace) && (s.contains('/') || s.contains(':'))
}

/// Whether `f` occurs in `s` at a segment start (or at a separator it begins with).
fn at_segment(s: &str, f: &str) -> bool {
    let mut from = 0;
    while let Some(p) = s[from..].find(f) {
        let at = from + p;
        let starts = at == 0 || f.starts_with('/') || matches!(s.as_bytes()[at - 1], b'/' | b'=' | b':' | b'"' | b'\'');
        if starts {
            return true;
        }
        from = at + 1;
        while from < s.len() && !s.is_char_boundary(from) {
            from += 1;
        }
    }
    false
}

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
    let lower = plain(value);
    let dots = count_dotdot(&lower);
    // One `../` in prose ("the files are in ../shared/docs") names a sibling, not a climb out.
    let prose = !is_path && dots == 1 && !pathlike(&lower);
    if dots >= 2 || (dots >= 1 && !is_path && !prose) {
        return Some(("dot_dot_slash", if dots >= 2 { 9 } else { 7 }));
    }
    if !is_path && STRONG.iter().any(|f| lower.contains(f)) {
        return Some(("system_file", 8));
    }
    if lower.contains(':') && WRAPPERS.iter().any(|w| lower.contains(w)) {
        return Some(("file_wrapper", 8));
    }
    if is_path {
        return (dots == 1).then_some(("dot_dot_slash", 7));
    }
    if pathlike(&lower) && FILES.iter().any(|f| at_segment(&lower, f)) {
        return Some(("system_file", 8));
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
        for v in [
            "/etc/apt/sources.list",
            "/var/adm/wtmp",
            ".ssh/id_rsa",
            "/path/to/.docker/secrets",
            "/sys/class/net",
            "/proc/interrupts",
            "C:\\Windows\\win.ini",
            "..;/..;/etc/hosts",
            "/etc/passwd\0.png",
            "....//....//etc/hosts",
            "file:///etc/hosts",
            "compress.zlib:///etc/hosts",
        ] {
            assert!(check(v, false).is_some(), "missed: {v}");
        }
        for v in [
            "edit /etc/hosts to add the name",
            "mammal;cat;ears",
            "LC & NC - Boys038-XL.jpg",
            "/sys/admin/dashboard",
            "/api/v1/users",
            "https://example.com/docs/.well-known/x",
            "a/b/c.txt",
        ] {
            assert!(check(v, false).is_none(), "false positive: {v}");
        }
    }
}
