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

/// PHP panels and installs (off with `php_app`).
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

/// Directories of other stacks' consoles and known-vulnerable products that scanners sweep for.
const SCANNER_DIRS: &[&str] = &[
    "cgi-bin",
    "actuator",
    "jolokia",
    "boaform",
    "hnap1",
    "_profiler",
    "telescope",
    "hudson",
    "autodiscover",
    "ecp",
    "mifs",
    "stalker_portal",
    "druid",
    "nacos",
];

/// Extensions of other server stacks' scripts.
const FOREIGN_EXT: &[&str] = &[".asp", ".aspx", ".jsp", ".cgi", ".pl", ".action", ".do", ".cfm"];

/// Returns the rule name when the normalised, lower-cased path asks for a sensitive resource.
/// `php_app` turns the PHP-panel probes off for an app that really is PHP.
pub fn check(path: &str, php_app: bool) -> Option<(&'static str, u32)> {
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
    if !php_app {
        if segs.iter().any(|s| PHP.contains(s)) || p.contains("/vendor/phpunit/") || p.contains("phpmyadmin") {
            return Some(("foreign_stack_panel", 6));
        }
        if last.ends_with(".php") || last.ends_with(".php5") || last.ends_with(".phtml") {
            return Some(("foreign_stack_script", 5));
        }
    }
    if segs.iter().any(|s| SCANNER_DIRS.contains(s)) {
        return Some(("scanner_path", 5));
    }
    if FOREIGN_EXT.iter().any(|e| last.ends_with(e)) {
        return Some(("foreign_stack_script", 4));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::check;

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
            assert!(check(p, false).is_some(), "missed: {p}");
        }
        for p in ["/", "/login", "/account/email", "/static/app.js", "/api/users/42", "/health", "/docs/environment"] {
            assert!(check(p, false).is_none(), "false positive: {p}");
        }
        assert!(check("/wp-login.php", true).is_none());
    }
}
