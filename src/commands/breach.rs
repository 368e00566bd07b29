//! `kevlar breach import FILE [--format hibp|plain]` and `kevlar breach check`.

use std::io::{BufRead, Read};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;

use crate::cli::BreachCommand;

pub fn run(command: BreachCommand) -> anyhow::Result<ExitCode> {
    match command {
        BreachCommand::Import { file, format, data_dir } => {
            let started = Instant::now();
            let reader: Box<dyn BufRead> = if file.as_os_str() == "-" {
                Box::new(std::io::BufReader::with_capacity(1 << 20, std::io::stdin()))
            } else {
                Box::new(std::io::BufReader::with_capacity(
                    1 << 20,
                    std::fs::File::open(&file).with_context(|| format!("cannot open {}", file.display()))?,
                ))
            };
            let index = match format.as_str() {
                "plain" => kevlar_breach::import_plain(reader),
                _ => kevlar_breach::import_hibp(reader),
            }
            .with_context(|| format!("cannot import {}", file.display()))?;
            std::fs::create_dir_all(&data_dir).with_context(|| format!("cannot create {}", data_dir.display()))?;
            let out = data_dir.join(kevlar_breach::INDEX_FILE);
            index.save(&out).with_context(|| format!("cannot write {}", out.display()))?;
            let secs = started.elapsed().as_secs_f64();
            println!(
                "{} hashes → {} ({:.1} MB, {:.2} bytes per hash) in {:.1} s ({:.1} M hashes/s); restart Kevlar to use it",
                index.hashes,
                out.display(),
                index.bytes() as f64 / 1e6,
                index.bytes() as f64 / index.hashes.max(1) as f64,
                secs,
                index.hashes as f64 / secs / 1e6
            );
            Ok(ExitCode::SUCCESS)
        }
        BreachCommand::Check { data_dir } => {
            let path = data_dir.join(kevlar_breach::INDEX_FILE);
            let index = kevlar_breach::Index::load(&path)
                .with_context(|| format!("cannot read {} (build it with `kevlar breach import`)", path.display()))?;
            let mut input = Vec::new();
            std::io::stdin().read_to_end(&mut input).context("cannot read the password on standard input")?;
            let pw = input.strip_suffix(b"\n").unwrap_or(&input);
            let pw = pw.strip_suffix(b"\r").unwrap_or(pw);
            match index.check(pw) {
                Some(b) => {
                    println!("breached: in the index (seen {} times)", b.as_str());
                    Ok(ExitCode::from(1))
                }
                None => {
                    println!("not found in the index ({} hashes)", index.hashes);
                    Ok(ExitCode::SUCCESS)
                }
            }
        }
    }
}
