//! Which requests are login attempts, by what they send rather than where: a password-shaped field
//! beside an identifier-shaped one, in a form, a JSON body (nested objects, GraphQL `variables`)
//! or a multipart form, on any path. Field names are compared by their last segment with case,
//! `-` and `_` ignored (`user[password]`, `credentials.user_name`, `variables.email`).
//!
//! Told apart: a request with the current password and a new one is a **password change** (an
//! account change, not a login); one with a password and its confirmation, or a new password
//! alone, is a **sign-up or a reset** (neither). A field that only contains such a word
//! (`pass_through`, `password_hint`) is not a password.

use kevlar_core::RequestView;
use kevlar_detect::extract::{self, Part, Source};

/// Field names (normalised: lower case, letters and digits) that carry the password of a login.
const PASSWORD: &[&str] =
    &["password", "passwd", "pass", "pwd", "passphrase", "userpassword", "userpass", "loginpassword", "pword"];
/// A new password or its confirmation: sign-up, reset, change.
const NEW_PASSWORD: &[&str] = &[
    "newpassword",
    "newpass",
    "newpasswd",
    "passwordnew",
    "password1",
    "password2",
    "passwordconfirmation",
    "passwordconfirm",
    "confirmpassword",
    "confirmpass",
    "passwordagain",
    "repeatpassword",
    "passwordrepeat",
    "retypepassword",
    "verifypassword",
    "newpassword1",
    "newpassword2",
    "confirmnewpassword",
    "newpasswordconfirmation",
    "pass2",
    "pwd2",
];
/// The password the user has now, next to a new one: a change.
const OLD_PASSWORD: &[&str] = &[
    "currentpassword",
    "oldpassword",
    "passwordcurrent",
    "passwordold",
    "existingpassword",
    "currentpass",
    "oldpass",
    "oldpwd",
];
/// Who the attempt is for.
const IDENTIFIER: &[&str] = &[
    "email",
    "username",
    "user",
    "login",
    "log",
    "identifier",
    "userid",
    "account",
    "mail",
    "emailaddress",
    "useremail",
    "loginid",
    "loginname",
    "usr",
    "uname",
    "userlogin",
];

/// What a request body says about logins.
#[derive(Debug, PartialEq, Eq)]
pub enum Shape {
    /// A login attempt: every distinct identity named, in body order (the password's value comes
    /// beside the shape, from [`classify`]).
    Login { users: Vec<String> },
    /// The current password and a new one.
    PasswordChange,
    /// A new password with no current one (sign-up, reset), or a password with no identity.
    Neither,
}

/// Cheap, before anything is parsed: could the body carry a password field at all? A scan for
/// `pass` or `pwd` in any case — most bodies stop here.
pub fn may_carry_password(body: &[u8]) -> bool {
    memchr::memchr2_iter(b'p', b'P', body).any(|i| {
        let l = |j: usize| body.get(i + j).map_or(0, u8::to_ascii_lowercase);
        matches!((l(1), l(2)), (b'a', b's') | (b'w', b'd'))
    })
}

/// `user[password]` → `password`; `credentials.user_name` → `username`.
fn key(name: &str) -> String {
    let last = name.trim_end_matches(']').rsplit(['.', '[', ']']).find(|s| !s.is_empty()).unwrap_or(name);
    last.chars().filter(char::is_ascii_alphanumeric).map(|c| c.to_ascii_lowercase()).collect()
}

/// The body's fields, read as the app reads them: JSON (when it says so or looks so), multipart,
/// else a form.
pub fn fields(view: &RequestView<'_>) -> (Vec<(String, String)>, &'static str) {
    let ct = view.headers.get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let name = |p: &Part<'_>| -> String {
        if p.location.is_empty() {
            p.name.to_string()
        } else {
            p.location.strip_prefix("body.").unwrap_or(&p.location).to_owned()
        }
    };
    if ct.contains("json") || view.body.trim_ascii_start().starts_with(b"{") {
        let mut owned: Vec<Part<'static>> = Vec::new();
        extract::json(view.body, &mut owned);
        let f = owned.iter().map(|p| (name(p), p.value.to_string())).collect();
        return (f, "a JSON body with a password and an identifier");
    }
    if ct.to_ascii_lowercase().starts_with("multipart/form-data") {
        let f = kevlar_detect::body::multipart::boundary(ct).map(|b| multipart(view.body, &b)).unwrap_or_default();
        return (f, "a multipart form with a password and an identifier");
    }
    let mut parts: Vec<Part<'_>> = Vec::new();
    extract::form(view.body, "body", Source::Body, &mut parts);
    (parts.iter().map(|p| (name(p), p.value.to_string())).collect(), "a form body with a password and an identifier")
}

/// The text fields of a multipart form (file parts skipped).
fn multipart(body: &[u8], boundary: &str) -> Vec<(String, String)> {
    let delim = format!("--{boundary}");
    let text = String::from_utf8_lossy(body);
    let mut out = Vec::new();
    for part in text.split(delim.as_str()).skip(1) {
        if part.starts_with("--") || out.len() >= 256 {
            break;
        }
        let Some((head, value)) = part.split_once("\r\n\r\n").or_else(|| part.split_once("\n\n")) else { continue };
        let disposition = head.lines().find(|l| l.to_ascii_lowercase().starts_with("content-disposition"));
        let Some(d) = disposition else { continue };
        let params = kevlar_detect::body::multipart::params(d);
        if params.iter().any(|(k, _)| k.eq_ignore_ascii_case("filename")) {
            continue;
        }
        if let Some((_, n)) = params.iter().find(|(k, _)| k.eq_ignore_ascii_case("name")) {
            let v = value.strip_suffix("\r\n").or_else(|| value.strip_suffix('\n')).unwrap_or(value);
            out.push((n.clone(), v.to_owned()));
        }
    }
    out
}

/// Reads the fields: the shape, and the value of the password (for the breached-password check).
pub fn classify(fields: &[(String, String)], clean: impl Fn(&str) -> Option<String>) -> (Shape, Option<&str>) {
    let (mut pass, mut new, mut old) = (None, false, false);
    let mut users: Vec<String> = Vec::new();
    for (name, value) in fields {
        let k = key(name);
        if value.is_empty() {
            continue;
        }
        if PASSWORD.contains(&k.as_str()) {
            pass.get_or_insert(value.as_str());
        } else if NEW_PASSWORD.contains(&k.as_str()) {
            new = true;
        } else if OLD_PASSWORD.contains(&k.as_str()) {
            old = true;
        } else if IDENTIFIER.contains(&k.as_str()) {
            if let Some(u) = clean(value) {
                if users.len() < super::MAX_CANDIDATES && !users.iter().any(|x| x.to_lowercase() == u.to_lowercase()) {
                    users.push(u);
                }
            }
        }
    }
    if old && (new || pass.is_some()) {
        return (Shape::PasswordChange, None);
    }
    if new {
        return (Shape::Neither, None);
    }
    match pass {
        Some(p) if !users.is_empty() => (Shape::Login { users }, Some(p)),
        _ => (Shape::Neither, None),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn shape(body: &str, ct: &str) -> Shape {
        let mut h = http::HeaderMap::new();
        h.insert(http::header::CONTENT_TYPE, ct.parse().unwrap());
        let view = RequestView {
            method: "POST",
            path: "/x",
            query: None,
            headers: &h,
            body: body.as_bytes(),
            body_complete: true,
        };
        classify(&fields(&view).0, |s| Some(s.to_owned())).0
    }

    fn users(s: Shape) -> Vec<String> {
        match s {
            Shape::Login { users, .. } => users,
            other => panic!("{other:?}"),
        }
    }

    const FORM: &str = "application/x-www-form-urlencoded";
    const JSON: &str = "application/json";

    #[test]
    fn the_shapes_frameworks_send() {
        assert_eq!(users(shape("user%5Bemail%5D=a%40b.c&user%5Bpassword%5D=x&commit=Log+in", FORM)), ["a@b.c"]);
        assert_eq!(users(shape("log=admin&pwd=x&wp-submit=Log+In", FORM)), ["admin"]);
        assert_eq!(users(shape(r#"{"identifier":"a","password":"x"}"#, JSON)), ["a"]);
        assert_eq!(users(shape(r#"{"user":{"email":"a@b.c","password":"x"}}"#, JSON)), ["a@b.c"]);
        let gql = r#"{"query":"mutation Login($email: String!, $password: String!) { login(email: $email, password: $password) { token } }","variables":{"email":"a@b.c","password":"x"}}"#;
        assert_eq!(users(shape(gql, JSON)), ["a@b.c"]);
        assert_eq!(users(shape("grant_type=password&username=a&password=x&client_id=c", FORM)), ["a"]);
        assert_eq!(users(shape("username=a&passwd=x", FORM)), ["a"]);
        assert_eq!(users(shape("csrfmiddlewaretoken=t&username=a&password=x&next=%2F", FORM)), ["a"]);
        let mp = "--XB\r\nContent-Disposition: form-data; name=\"email\"\r\n\r\na@b.c\r\n--XB\r\nContent-Disposition: form-data; name=\"password\"\r\n\r\nx\r\n--XB--\r\n";
        assert_eq!(users(shape(mp, "multipart/form-data; boundary=XB")), ["a@b.c"]);
    }

    #[test]
    fn what_is_not_a_login() {
        assert_eq!(shape("q=password+reset&page=2", FORM), Shape::Neither, "a search");
        assert_eq!(shape("name=a&comment=hi&pass_through=1", FORM), Shape::Neither);
        assert_eq!(shape("email=a%40b.c&password=x&password_confirmation=x", FORM), Shape::Neither, "a sign-up");
        assert_eq!(shape("username=a&password1=x&password2=x", FORM), Shape::Neither, "Django's sign-up");
        assert_eq!(shape("current_password=x&new_password=y&new_password_confirmation=y", FORM), Shape::PasswordChange);
        assert_eq!(shape("user%5Bcurrent_password%5D=x&user%5Bpassword%5D=y", FORM), Shape::PasswordChange);
        assert_eq!(shape("password=x", FORM), Shape::Neither, "no identity");
        assert!(!may_carry_password(b"q=shoes&size=42"));
        assert!(may_carry_password(b"{\"PASSWORD\":1}") && may_carry_password(b"log=a&pwd=b"));
    }
}
