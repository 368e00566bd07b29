//! `kevlar status`, `kevlar reload`, `kevlar restart`: calls to the running Kevlar's admin API.

use std::process::ExitCode;

use anyhow::{bail, Context};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde_json::Value;

use crate::cli::ControlArgs;
use crate::commands::serve::ADMIN_ADDR_FILE;

fn admin_url(a: &ControlArgs) -> anyhow::Result<String> {
    if let Some(u) = &a.admin {
        return Ok(if u.contains("://") { u.trim_end_matches('/').to_owned() } else { format!("http://{u}") });
    }
    let file = a.data_dir.join(ADMIN_ADDR_FILE);
    let url = std::fs::read_to_string(&file).with_context(|| {
        format!("cannot read {} (is Kevlar running with --data-dir {}?)", file.display(), a.data_dir.display())
    })?;
    Ok(url.trim().to_owned())
}

fn call(a: &ControlArgs, method: http::Method, path: &str) -> anyhow::Result<(u16, Value)> {
    call_with(a, method, path, None)
}

/// Whether a Kevlar is running with this data dir (or an explicit --admin was given).
pub(crate) fn running(a: &ControlArgs) -> bool {
    a.admin.is_some() || a.data_dir.join(ADMIN_ADDR_FILE).exists()
}

/// Calls the admin API with an optional JSON body; answers (status, JSON).
pub(crate) fn call_with(
    a: &ControlArgs,
    method: http::Method,
    path: &str,
    body: Option<Value>,
) -> anyhow::Result<(u16, Value)> {
    let base = admin_url(a)?;
    if base.starts_with("https://") {
        bail!("the admin API is served over TLS; call {base}{path} with a TLS client (curl --cacert …)");
    }
    let token_file = a.data_dir.join(kevlar_admin::TOKEN_FILE);
    let token = std::fs::read_to_string(&token_file)
        .with_context(|| format!("cannot read the admin token {}", token_file.display()))?;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async {
        let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build_http::<Full<Bytes>>();
        let req = http::Request::builder()
            .method(method)
            .uri(format!("{base}{path}"))
            .header(http::header::AUTHORIZATION, format!("Bearer {}", token.trim()))
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(Full::new(body.map(|b| Bytes::from(b.to_string())).unwrap_or_default()))?;
        let resp = tokio::time::timeout(std::time::Duration::from_secs(600), client.request(req))
            .await
            .context("the admin API did not answer")?
            .with_context(|| format!("cannot reach the admin API at {base}"))?;
        let status = resp.status().as_u16();
        let body = resp.into_body().collect().await?.to_bytes();
        let v: Value =
            serde_json::from_slice(&body).unwrap_or(Value::String(String::from_utf8_lossy(&body).into_owned()));
        Ok((status, v))
    })
}

fn ms(v: &Value) -> String {
    match v.as_i64() {
        Some(ms) => humantime::format_duration(std::time::Duration::from_secs((ms / 1000).max(0) as u64)).to_string(),
        None => "-".into(),
    }
}

/// `kevlar dashboard`: the URL and the token's file (never the token itself).
pub fn dashboard(a: ControlArgs) -> anyhow::Result<ExitCode> {
    let url = admin_url(&a)?;
    let token_file = a.data_dir.join(kevlar_admin::TOKEN_FILE);
    let token_file = std::fs::canonicalize(&token_file).unwrap_or(token_file);
    if a.json {
        println!("{}", serde_json::json!({ "url": format!("{url}/"), "token_file": token_file }));
    } else {
        println!("dashboard:  {url}/");
        println!("token:      {} (paste it on the sign-in page)", token_file.display());
    }
    Ok(ExitCode::SUCCESS)
}

pub fn status(a: ControlArgs) -> anyhow::Result<ExitCode> {
    let (code, v) = call(&a, http::Method::GET, "/v1/status")?;
    if code != 200 {
        bail!("admin API answered {code}: {v}");
    }
    if a.json {
        println!("{v}");
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "kevlar {}  up {}",
        v["version"].as_str().unwrap_or("?"),
        ms(&(v["uptime_seconds"].as_i64().map(|s| s * 1000).into()))
    );
    let p = &v["proxy"];
    println!(
        "proxy: {} requests, {} open connections, {} 4xx, {} 5xx, {} upstream errors, {} requests waiting",
        p["requests"],
        p["connections_open"],
        p["responses_4xx"],
        p["responses_5xx"],
        p["upstream_errors"],
        v["held_requests"]
    );
    let d = &v["detection"];
    if d.is_object() {
        let names = |k: &str| {
            let l: Vec<&str> = d["stack"][k].as_array().into_iter().flatten().filter_map(|s| s.as_str()).collect();
            if l.is_empty() {
                "none".to_owned()
            } else {
                l.join(", ")
            }
        };
        let learning =
            if d["stack"]["auto"] == true { format!("; learned: {}", names("learned")) } else { String::new() };
        println!(
            "detection: {}, {} inspected, {} flagged, {} blocked; stack: {}{learning}",
            d["mode"].as_str().unwrap_or("?"),
            d["inspected"],
            d["flagged"],
            d["blocked"],
            if d["stack"]["auto"] == true && names("declared") == "none" {
                "auto".to_owned()
            } else {
                names("declared")
            },
        );
    }
    if let Some(app) = v.get("app") {
        println!("app: {}", app["state"].as_str().unwrap_or("?"));
        println!(
            "  {:<4} {:<11} {:<8} {:<6} {:<10} {:<9} {:<8} LAST EXIT",
            "#", "STATE", "PID", "PORT", "UPTIME", "RESTARTS", "HEALTH"
        );
        for i in app["instances"].as_array().into_iter().flatten() {
            println!(
                "  {:<4} {:<11} {:<8} {:<6} {:<10} {:<9} {:<8} {}",
                i["slot"].to_string(),
                i["state"].as_str().unwrap_or("?"),
                i["pid"].as_u64().map(|p| p.to_string()).unwrap_or("-".into()),
                i["port"].as_u64().map(|p| p.to_string()).unwrap_or("-".into()),
                ms(&i["uptime_ms"]),
                i["restarts"].to_string(),
                i["health"].as_str().unwrap_or("?"),
                i["last_exit"].as_str().unwrap_or("-")
            );
        }
    } else {
        println!("upstream: {}", v["upstream"]);
    }
    if !v["alerts"].is_null() {
        let alerts: kevlar_sinks::dispatch::AlertsStatus = super::typed(v["alerts"].clone(), "alert status")?;
        println!("alert sinks:");
        for s in &alerts.sinks {
            let err = s.last_error.as_deref().map(|e| format!("  last error: {e}")).unwrap_or_default();
            println!(
                "  {:<16} {:<9} {:<8} {} delivered, {} pending, {} held, {} dead{err}",
                s.name,
                s.kind,
                s.state,
                s.delivered.unwrap_or(0),
                s.pending,
                s.held,
                s.dead
            );
        }
    }
    let cl = &v["cluster"];
    if cl.is_object() {
        let names: Vec<String> = cl["instances"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|i| {
                let state = if i["healthy"] == true { "up" } else { "stale" };
                format!("{} ({state})", super::shown(&i["instance"], 64))
            })
            .collect();
        println!(
            "cluster: {} as {}, Redis {}, {} bans shared; instances: {}",
            super::shown(&cl["name"], 64),
            super::shown(&cl["instance"], 64),
            super::shown(&cl["redis"], 16),
            cl["shared_bans"],
            if names.is_empty() { "none seen yet".to_owned() } else { names.join(", ") }
        );
    }
    let a = &v["audit"];
    if a.is_object() {
        let runtime = a["runtime"]["version"]
            .as_str()
            .map(|r| format!("; Node.js {r} {}", a["runtime"]["status"].as_str().unwrap_or("?")))
            .unwrap_or_default();
        println!(
            "audit: {} ({} packages): {} findings, {} ignored, last audited {}{runtime}",
            a["lockfile"].as_str().unwrap_or("?"),
            a["packages"],
            a["findings"],
            a["ignored"],
            a["last_audit"].as_str().unwrap_or("?")
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// POSTs an app action; exit 0 when the admin API answered `ok_status`, 1 with its reason otherwise.
fn app_action(a: &ControlArgs, action: &str, ok_status: u16, done: &str) -> anyhow::Result<ExitCode> {
    let (code, v) = call(a, http::Method::POST, &format!("/v1/app/{action}"))?;
    if code == ok_status {
        println!("{done}");
        return Ok(ExitCode::SUCCESS);
    }
    eprintln!("kevlar: {action} failed: {}", v["error"].as_str().unwrap_or(&v.to_string()));
    Ok(ExitCode::from(1))
}

pub fn reload(a: ControlArgs) -> anyhow::Result<ExitCode> {
    app_action(&a, "reload", 200, "reloaded")
}

pub fn restart(a: ControlArgs) -> anyhow::Result<ExitCode> {
    app_action(&a, "restart", 202, "restarting")
}
