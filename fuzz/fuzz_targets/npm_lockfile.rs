//! Any text given to each lockfile parser (npm JSON, pnpm YAML, yarn v1, bun.lock, Cargo.lock,
//! poetry.lock, uv.lock, requirements.txt) and to the PEP 440 reader: packages or
//! an error naming the file, never a panic or an unbounded walk.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        use kevlar_audit::lockfile::{bun, cargo, npm, pnpm, python, yarn};
        if let Err(e) = npm::parse(text, "fuzz/package-lock.json") {
            assert!(e.to_string().starts_with("fuzz/package-lock.json"));
        }
        if let Err(e) = pnpm::parse(text, "fuzz/pnpm-lock.yaml") {
            assert!(e.to_string().starts_with("fuzz/pnpm-lock.yaml"));
        }
        if let Err(e) = yarn::parse(text, "fuzz/yarn.lock", None) {
            assert!(e.to_string().starts_with("fuzz/yarn.lock"));
        }
        if let Err(e) = bun::parse(text, "fuzz/bun.lock") {
            assert!(e.to_string().starts_with("fuzz/bun.lock"));
        }
        if let Err(e) = cargo::parse(text, "fuzz/Cargo.lock") {
            assert!(e.to_string().starts_with("fuzz/Cargo.lock"));
        }
        if let Err(e) = python::parse_poetry(text, "fuzz/poetry.lock", Some(text)) {
            assert!(e.to_string().starts_with("fuzz/poetry.lock"));
        }
        if let Err(e) = python::parse_uv(text, "fuzz/uv.lock") {
            assert!(e.to_string().starts_with("fuzz/uv.lock"));
        }
        if let Err(e) = python::parse_requirements(text, "fuzz/requirements.txt") {
            assert!(e.to_string().starts_with("fuzz/requirements.txt"));
        }
        for v in ["1.0", "2!1.0rc1.post2.dev3+x.1", text] {
            let _ = kevlar_audit::pep440::parse(v);
        }
    }
});
