//! `kevlar update --pr github`: a pull request per pushed update branch, through GitHub's REST API
//! (`POST /repos/{owner}/{repo}/pulls`, as GitHub documents it: a bearer token, the
//! `application/vnd.github+json` media type and the API version header).

use std::time::Duration;

use anyhow::{bail, Context};

/// GitHub's REST API version the requests are written for.
const API_VERSION: &str = "2022-11-28";
/// GitHub refuses bodies over 65,536 characters; the test log is cut well before.
const MAX_LOG: usize = 48_000;

/// Where and as whom pull requests are opened.
pub struct GitHub {
    api: String,
    repo: String,
    token: String,
    agent: ureq::Agent,
}

/// What became of one pull request.
pub enum Opened {
    Url(String),
    /// GitHub says one is open already for this branch.
    Exists,
}

impl GitHub {
    /// From `GITHUB_TOKEN`, the API base (`--api-url`, else `GITHUB_API_URL` as GitHub Actions sets
    /// it, else api.github.com) and the repository (`--repo`, else `GITHUB_REPOSITORY`, else the
    /// remote's URL). Checked before any trial runs.
    pub fn from_env(api: Option<&str>, repo: Option<&str>, remote_url: &str) -> anyhow::Result<GitHub> {
        let token = std::env::var("GITHUB_TOKEN").ok().filter(|t| !t.trim().is_empty()).context(
            "--pr github needs a token in GITHUB_TOKEN (in GitHub Actions: `env: GITHUB_TOKEN: ${{ secrets.GITHUB_TOKEN }}` \
             with `permissions: pull-requests: write, contents: write`)",
        )?;
        let api = api
            .map(str::to_owned)
            .or_else(|| std::env::var("GITHUB_API_URL").ok().filter(|a| !a.is_empty()))
            .unwrap_or_else(|| "https://api.github.com".to_owned());
        let repo = match repo.map(str::to_owned).or_else(|| std::env::var("GITHUB_REPOSITORY").ok()) {
            Some(r) => r,
            None => repo_from_url(remote_url).with_context(|| {
                format!(
                    "cannot tell the GitHub repository from the remote's URL `{remote_url}`; give --repo OWNER/NAME"
                )
            })?,
        };
        if repo.split('/').count() != 2 || repo.split('/').any(str::is_empty) {
            bail!("`{repo}` is not a GitHub repository (OWNER/NAME)");
        }
        let agent = ureq::AgentBuilder::new()
            .timeout(Duration::from_secs(30))
            .user_agent(concat!("kevlar/", env!("CARGO_PKG_VERSION")))
            .build();
        Ok(GitHub { api: api.trim_end_matches('/').to_owned(), repo, token: token.trim().to_owned(), agent })
    }

    /// Opens a pull request from `head` into `base`.
    pub fn open(&self, head: &str, base: &str, title: &str, body: &str) -> anyhow::Result<Opened> {
        let url = format!("{}/repos/{}/pulls", self.api, self.repo);
        let payload = serde_json::json!({ "title": title, "head": head, "base": base, "body": body });
        let resp = self
            .agent
            .post(&url)
            .set("Authorization", &format!("Bearer {}", self.token))
            .set("Accept", "application/vnd.github+json")
            .set("X-GitHub-Api-Version", API_VERSION)
            .set("Content-Type", "application/json")
            .send_string(&payload.to_string());
        match resp {
            Ok(r) => {
                let v: serde_json::Value =
                    serde_json::from_str(&r.into_string().unwrap_or_default()).unwrap_or_default();
                Ok(Opened::Url(v["html_url"].as_str().unwrap_or("(no html_url in GitHub's answer)").to_owned()))
            }
            Err(ureq::Error::Status(422, r)) => {
                let text = r.into_string().unwrap_or_default();
                if text.contains("already exists") {
                    Ok(Opened::Exists)
                } else {
                    bail!("GitHub refused the pull request for {head}: {}", message(&text))
                }
            }
            Err(ureq::Error::Status(code, r)) => {
                bail!(
                    "GitHub answered {code} to the pull request for {head}: {}",
                    message(&r.into_string().unwrap_or_default())
                )
            }
            Err(e) => bail!("cannot reach {}: {e}", self.api),
        }
    }
}

/// GitHub's error message, from its JSON answer (the token is never in it).
fn message(text: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(text).unwrap_or_default();
    let mut m = v["message"].as_str().unwrap_or(text).chars().take(300).collect::<String>();
    if let Some(errors) = v["errors"].as_array() {
        for e in errors {
            if let Some(s) = e["message"].as_str() {
                m.push_str("; ");
                m.push_str(s);
            }
        }
    }
    m
}

/// `OWNER/NAME` from a github.com remote URL (HTTPS, SSH or scp-like).
pub fn repo_from_url(url: &str) -> Option<String> {
    let rest = url
        .strip_prefix("git@github.com:")
        .or_else(|| url.split_once("github.com/").map(|(_, r)| r))
        .or_else(|| url.split_once("github.com:").map(|(_, r)| r))?;
    let rest = rest.trim_end_matches('/').trim_end_matches(".git");
    let mut parts = rest.split('/');
    let (owner, name) = (parts.next()?, parts.next()?);
    (!owner.is_empty() && !name.is_empty() && parts.next().is_none()).then(|| format!("{owner}/{name}"))
}

/// The pull request's body: what was tried, what it fixes, and the end of the test log.
pub fn body(package: &str, version: &str, test: &str, secs: f64, fixes: &[String], log: &str) -> String {
    let mut b = format!("`{test}` passes with {package} {version} ({secs:.1} s), tried by `kevlar update --test`.\n");
    if !fixes.is_empty() {
        b.push_str(&format!("\nThis version fixes {} of the current one.\n", fixes.join(", ")));
    }
    let start = log.len().saturating_sub(MAX_LOG);
    let start = (start..log.len()).find(|&i| log.is_char_boundary(i)).unwrap_or(log.len());
    b.push_str(&format!(
        "\n<details><summary>The end of the test log</summary>\n\n```\n{}\n```\n</details>\n",
        log[start..].replace("```", "` ` `")
    ));
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_repository_is_read_from_each_form_of_github_url() {
        for url in [
            "git@github.com:acme/shop.git",
            "https://github.com/acme/shop",
            "https://github.com/acme/shop.git/",
            "ssh://git@github.com/acme/shop.git",
            "https://x-access-token:abc@github.com/acme/shop.git",
        ] {
            assert_eq!(repo_from_url(url).as_deref(), Some("acme/shop"), "{url}");
        }
        assert_eq!(repo_from_url("/srv/git/shop.git"), None);
        assert_eq!(repo_from_url("https://github.com/acme"), None);
    }

    #[test]
    fn the_body_keeps_the_end_of_a_long_log_and_cannot_close_its_fence() {
        let log = format!("{}last line ``` here", "é".repeat(40_000));
        let b = body("qs", "6.7.3", "npm test", 1.25, &["GHSA-1".into()], &log);
        assert!(b.len() < 60_000 && b.contains("last line ` ` ` here") && b.contains("fixes GHSA-1"), "{}", b.len());
        assert!(b.contains("`npm test` passes with qs 6.7.3 (1.2 s)") || b.contains("(1.3 s)"));
    }
}
