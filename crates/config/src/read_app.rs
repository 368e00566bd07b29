//! `[app]`: what `kevlar run` starts and how it keeps it running.

use crate::model::*;
use crate::reader::{Doc, Table};
use std::path::PathBuf;

use crate::units::{parse_duration, parse_size, secs_from_int, size_from_int};

pub(crate) fn read_app(doc: &mut Doc, t: &mut Table, a: &mut AppConfig) {
    let secs: &dyn Fn(i64) -> Result<std::time::Duration, String> = &secs_from_int;
    if let Some((cmd, span)) = t.strings(doc, "command") {
        if cmd.is_empty() {
            doc.error(span, "app.command", "must name a program");
        }
        a.command = cmd;
    }
    if let Some(p) = t.integer(doc, "port", 1, 65535) {
        a.port = Some(p as u16);
    }
    if let Some((d, _)) = t.string(doc, "cwd") {
        a.cwd = Some(PathBuf::from(d));
    }
    if let Some(n) = t.integer(doc, "instances", 1, 64) {
        a.instances = n as usize;
    }
    for (key, slot) in [
        ("ready_timeout", &mut a.ready_timeout),
        ("stop_grace", &mut a.stop_grace),
        ("hold_timeout", &mut a.hold_timeout),
        ("backoff_first", &mut a.backoff_first),
        ("backoff_max", &mut a.backoff_max),
        ("min_uptime", &mut a.min_uptime),
        ("crash_window", &mut a.crash_window),
    ] {
        if let Some(d) = t.parsed(doc, key, parse_duration, Some(secs)) {
            *slot = d;
        }
    }
    if let Some(n) = t.integer(doc, "max_held", 0, 1_000_000) {
        a.max_held = n as usize;
    }
    if let Some(n) = t.integer(doc, "max_fast_crashes", 1, 1000) {
        a.max_fast_crashes = n as u32;
    }
    if let Some((item, span)) = t.item("backoff_factor") {
        match item.as_float().or_else(|| item.as_integer().map(|i| i as f64)) {
            Some(f) if (1.0..=10.0).contains(&f) => a.backoff_factor = f,
            _ => doc.error(span, "app.backoff_factor", "must be a number from 1 to 10"),
        }
    }
    if a.backoff_first > a.backoff_max {
        doc.error(None, "app.backoff_first", "must not be longer than app.backoff_max");
    }
    if let Some(env) = t.table(doc, "env") {
        for (k, item, span) in env.entries() {
            match item.as_str() {
                Some(v) => a.env.push((k.to_owned(), v.to_owned())),
                None => doc.error(span, &env.key_path(k), "expected a string"),
            }
        }
    }
    if let Some(mut h) = t.table(doc, "health") {
        if let Some((item, span)) = h.item("path") {
            match (item.as_str(), item.as_bool()) {
                (Some(p), _) if p.starts_with('/') && !p.contains(char::is_whitespace) => {
                    a.health.path = Some(p.to_owned())
                }
                (_, Some(false)) => a.health.path = None,
                _ => doc.error(span, "app.health.path", "must be a path starting with `/`, or false (TCP check only)"),
            }
        }
        for (key, slot) in [("interval", &mut a.health.interval), ("timeout", &mut a.health.timeout)] {
            if let Some(d) = h.parsed(doc, key, parse_duration, Some(secs)) {
                if d.is_zero() {
                    doc.error(None, &h.key_path(key), "must be longer than zero");
                } else {
                    *slot = d;
                }
            }
        }
        if let Some(n) = h.integer(doc, "failures", 1, 100) {
            a.health.failures = n as u32;
        }
        h.finish(doc);
    }
    if let Some(mut l) = t.table(doc, "logs") {
        let int: &dyn Fn(i64) -> Result<u64, String> = &size_from_int;
        if let Some(n) = l.parsed(doc, "max_size", parse_size, Some(int)) {
            a.logs.max_bytes = n;
        }
        if let Some(n) = l.integer(doc, "keep", 0, 100) {
            a.logs.keep = n as usize;
        }
        if let Some(b) = l.boolean(doc, "echo") {
            a.logs.echo = b;
        }
        l.finish(doc);
    }
}
