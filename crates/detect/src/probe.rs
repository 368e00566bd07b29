//! Sensitive-resource probes: requests for files that should never be served (`.env`, `.git/`,
//! keys, backups, editor swap files), admin panels of other stacks, and `node_modules/`.

/// Directories whose contents are never served: version control, credentials, tooling.
const DIRS: &[&str] = &[
    ".git",
    ".svn",
    ".hg",
    ".bzr",
    "cvs",
    ".aws",
    ".ssh",
    ".docker",
    ".kube",
    ".gnupg",
    ".idea",
    ".vscode",
    ".config",
    ".npm",
    ".yarn",
    ".circleci",
    ".github",
    "node_modules",
    ".well-known-not",
    // Coding assistants' and deploy tools' own directories (rules, settings, MCP servers, keys).
    ".claude",
    ".cursor",
    ".continue",
    ".aider",
    ".roo",
    ".zed",
    ".cline",
    ".kiro",
    ".windsurf",
    ".rovodev",
    ".codex",
    ".opencode",
    ".plandex",
    ".n8n",
    ".junie",
    ".gemini",
    ".vercel",
    ".netlify",
    ".terraform",
];

/// Files that hold secrets or configuration, or that only a scanner asks for.
const FILES: &[&str] = &[
    ".htaccess",
    ".htpasswd",
    ".ds_store",
    ".npmrc",
    ".yarnrc",
    ".netrc",
    ".pgpass",
    ".bash_history",
    ".zsh_history",
    ".mysql_history",
    ".dockerenv",
    "id_rsa",
    "id_dsa",
    "id_ecdsa",
    "id_ed25519",
    "authorized_keys",
    "known_hosts",
    "credentials",
    "docker-compose.yml",
    "docker-compose.yaml",
    "dockerfile",
    "web.config",
    "wp-config.php",
    "config.php",
    "configuration.php",
    "settings.php",
    "database.yml",
    "secrets.yml",
    "server-status",
    "server-info",
    "phpinfo.php",
    "info.php",
    "test.php",
    "shell.php",
    "cmd.php",
    "c99.php",
    "r57.php",
    "elmah.axd",
    "trace.axd",
    "web.xml",
    "jmx-console",
    "heapdump",
    "sftp-config.json",
    ".git-credentials",
    ".gitconfig",
    "composer.lock",
    "sendgrid.env",
    "keys.json",
    "dump.sql",
    "backup.sql",
    "database.sql",
    "db.sql",
    "users.sql",
    ".aiignore",
    ".cursorignore",
    ".cursorrules",
    ".clinerules",
    ".windsurfrules",
    ".mcp.json",
    "mcp.json",
];

/// Extensions of backups, archives, keys, databases and configuration.
const EXT: &[&str] = &[
    ".bak", ".old", ".orig", ".swp", ".swo", ".save", ".backup", ".tmp", ".sql", ".sql.gz", ".tar.gz", ".tgz", ".7z",
    ".rar", ".pem", ".key", ".p12", ".pfx", ".jks", ".kdbx", ".sqlite", ".db", ".mdb", ".log", ".ini", ".cfg", ".conf",
];

/// PHP panels and installs (not probes when the app is PHP).
const PHP: &[&str] = &[
    "wp-login.php",
    "xmlrpc.php",
    "wp-admin",
    "wp-content",
    "wp-includes",
    "phpmyadmin",
    "pma",
    "myadmin",
    "phpmyadmin2",
    "mysqladmin",
    "adminer.php",
    "vendor/phpunit",
];

/// Directories of other stacks' consoles and known-vulnerable products that scanners sweep for,
/// with the stack that really serves them (then they are the app's own).
const SCANNER_DIRS: &[(&str, Option<Stack>)] = &[
    ("cgi-bin", Some(Stack::Cgi)),
    ("actuator", Some(Stack::Java)),
    ("jolokia", Some(Stack::Java)),
    ("boaform", None),
    ("hnap1", None),
    ("_profiler", Some(Stack::Php)),
    ("telescope", Some(Stack::Php)),
    ("hudson", Some(Stack::Java)),
    ("autodiscover", Some(Stack::Dotnet)),
    ("ecp", Some(Stack::Dotnet)),
    ("mifs", None),
    ("stalker_portal", None),
    ("druid", Some(Stack::Java)),
    ("nacos", Some(Stack::Java)),
];

/// Extensions of server stacks' scripts, by stack.
const STACK_EXT: &[(&str, Stack)] = &[
    (".php", Stack::Php),
    (".php5", Stack::Php),
    (".phtml", Stack::Php),
    (".asp", Stack::Dotnet),
    (".aspx", Stack::Dotnet),
    (".ashx", Stack::Dotnet),
    (".asmx", Stack::Dotnet),
    (".jsp", Stack::Java),
    (".jspx", Stack::Java),
    (".jsf", Stack::Java),
    (".faces", Stack::Java),
    (".action", Stack::Java),
    (".do", Stack::Java),
    (".cgi", Stack::Cgi),
    (".pl", Stack::Cgi),
    (".cfm", Stack::Coldfusion),
    (".cfc", Stack::Coldfusion),
];

/// A server stack: whose scripts, panels and consoles a path names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stack {
    Node,
    Php,
    Java,
    Dotnet,
    /// CGI scripts, Perl.
    Cgi,
    Coldfusion,
    Python,
    Ruby,
}

impl Stack {
    pub const ALL: [Stack; 8] = [
        Stack::Node,
        Stack::Php,
        Stack::Java,
        Stack::Dotnet,
        Stack::Cgi,
        Stack::Coldfusion,
        Stack::Python,
        Stack::Ruby,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Stack::Node => "node",
            Stack::Php => "php",
            Stack::Java => "java",
            Stack::Dotnet => "dotnet",
            Stack::Cgi => "cgi",
            Stack::Coldfusion => "coldfusion",
            Stack::Python => "python",
            Stack::Ruby => "ruby",
        }
    }

    pub fn parse(s: &str) -> Option<Stack> {
        Stack::ALL.into_iter().find(|k| k.as_str() == s)
    }

    fn bit(self) -> u16 {
        1 << (self as u16)
    }
}

/// A set of stacks, as a bit mask.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct Stacks(pub u16);

impl Stacks {
    pub const NONE: Stacks = Stacks(0);

    pub fn contains(self, s: Stack) -> bool {
        self.0 & s.bit() != 0
    }
    pub fn with(self, s: Stack) -> Stacks {
        Stacks(self.0 | s.bit())
    }
    pub fn union(self, o: Stacks) -> Stacks {
        Stacks(self.0 | o.0)
    }
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
    pub fn iter(self) -> impl Iterator<Item = Stack> {
        Stack::ALL.into_iter().filter(move |s| self.contains(*s))
    }
}

impl FromIterator<Stack> for Stacks {
    fn from_iter<I: IntoIterator<Item = Stack>>(iter: I) -> Self {
        iter.into_iter().fold(Stacks::NONE, Stacks::with)
    }
}

/// The rules that judge a path by what it looks like rather than by what it holds: an app may
/// really serve it (a `.jsp` page on a Java app, a download named `….tar.gz`), and then it is
/// no probe. `[detect] stack` and what the app answers decide (the shield learns both).
pub const SERVABLE_RULES: &[&str] =
    &["foreign_stack_script", "foreign_stack_panel", "scanner_path", "backup_or_secret_file"];

/// The stack whose own path this is (a `.jsp` page is Java's, `/cgi-bin/` CGI's), if any.
pub fn owner(path: &str) -> Option<Stack> {
    let p = path.to_ascii_lowercase();
    let last = p.rsplit('/').find(|s| !s.is_empty()).unwrap_or("");
    if let Some((_, s)) = STACK_EXT.iter().find(|(e, _)| last.ends_with(e) && last.len() > e.len()) {
        return Some(*s);
    }
    let mut segs = p.split('/').filter(|s| !s.is_empty());
    if segs.any(|s| PHP.contains(&s)) || p.contains("phpmyadmin") || p.contains("/vendor/phpunit/") {
        return Some(Stack::Php);
    }
    p.split('/').find_map(|s| SCANNER_DIRS.iter().find(|(d, _)| *d == s).and_then(|(_, k)| *k))
}

/// Returns the rule name when the normalised, lower-cased path asks for a sensitive resource.
/// Paths of the app's own stacks (`own`) are not probes: `.php` scripts and `wp-admin` on a PHP
/// app, `.jsp` pages on a Java one.
pub fn check(path: &str, own: Stacks) -> Option<(&'static str, u32)> {
    let p = path.to_ascii_lowercase();
    let segs: Vec<&str> = p.split('/').filter(|s| !s.is_empty()).collect();
    let last = segs.last().copied().unwrap_or("");
    if segs.first() == Some(&"@fs") {
        // Vite's dev server reads any file named after `/@fs/` (CVE-2025-30208 and kin).
        return Some(("dev_server_file_read", 7));
    }
    for s in &segs {
        if DIRS.contains(s) {
            return Some(("sensitive_directory", 6));
        }
        if *s == ".env" || s.starts_with(".env.") || s.ends_with(".env") && s.len() <= 24 {
            return Some(("dotenv", 7));
        }
    }
    if FILES.contains(&last) {
        return Some(("sensitive_file", 7));
    }
    if last.ends_with('~') || last.starts_with(".#") || (last.starts_with('#') && last.ends_with('#')) {
        return Some(("editor_backup", 6));
    }
    if EXT.iter().any(|e| last.ends_with(*e) && last.len() > e.len()) {
        return Some(("backup_or_secret_file", 6));
    }
    let owned = |s: Option<Stack>| s.is_some_and(|s| own.contains(s));
    if !own.contains(Stack::Php)
        && (segs.iter().any(|s| PHP.contains(s)) || p.contains("/vendor/phpunit/") || p.contains("phpmyadmin"))
    {
        return Some(("foreign_stack_panel", 6));
    }
    if let Some((e, s)) = STACK_EXT.iter().find(|(e, _)| last.ends_with(e)) {
        if !own.contains(*s) {
            let php = e.starts_with(".ph");
            return Some(("foreign_stack_script", if php { 5 } else { 4 }));
        }
    }
    if segs.iter().any(|s| SCANNER_DIRS.iter().any(|(d, k)| d == s && !owned(*k))) {
        return Some(("scanner_path", 5));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::{check, owner, Stack, Stacks};

    #[test]
    fn probes() {
        for p in [
            "/.env",
            "/.env.local",
            "/app/.git/config",
            "/.aws/credentials",
            "/.ssh/id_rsa",
            "/backup.sql",
            "/index.js.bak",
            "/wp-login.php",
            "/phpmyadmin/",
            "/node_modules/x/package.json",
            "/config.js~",
            "/.DS_Store",
            "/.claude/settings.json",
            "/app/.cursor/mcp.json",
            "/.cursorignore",
            "/@fs/etc/passwd",
        ] {
            assert!(check(p, Stacks::NONE).is_some(), "missed: {p}");
        }
        for p in ["/", "/login", "/account/email", "/static/app.js", "/api/users/42", "/health", "/docs/environment"] {
            assert!(check(p, Stacks::NONE).is_none(), "false positive: {p}");
        }
        let php = Stacks::NONE.with(Stack::Php);
        assert!(check("/wp-login.php", php).is_none());
        assert_eq!(check("/index.jsp", php), Some(("foreign_stack_script", 4)));
        let java = Stacks::NONE.with(Stack::Java);
        for p in ["/tienda1/publico/anadir.jsp", "/actuator/health", "/app/login.do", "/struts/save.action"] {
            assert!(check(p, java).is_none(), "{p} is a Java app's own");
            assert!(check(p, Stacks::NONE).is_some(), "{p} is foreign on a Node app");
            assert_eq!(owner(p), Some(Stack::Java));
        }
        // A Java app's secrets are still secrets.
        assert_eq!(check("/WEB-INF/web.xml", java), Some(("sensitive_file", 7)));
        assert_eq!(owner("/cgi-bin/test"), Some(Stack::Cgi));
        assert_eq!(owner("/phpmyadmin/index"), Some(Stack::Php));
        assert_eq!(owner("/files/a.tar.gz"), None);
    }
}
