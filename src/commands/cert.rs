//! `kevlar cert --self-signed`: a local CA and a server certificate it signs, for trying TLS.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose};

fn year_now() -> i32 {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    1970 + (secs / 31_556_952) as i32
}

pub fn run(out: &Path, hosts: &[String]) -> anyhow::Result<ExitCode> {
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let year = year_now();
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, "Kevlar local CA");
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    ca.not_before = rcgen::date_time_ymd(year - 1, 1, 1);
    ca.not_after = rcgen::date_time_ymd(year + 3, 1, 1);
    let ca_key = KeyPair::generate()?;
    let ca_cert = ca.self_signed(&ca_key)?;

    let mut leaf = CertificateParams::new(hosts.to_vec()).context("invalid --host")?;
    leaf.distinguished_name.push(DnType::CommonName, hosts.first().cloned().unwrap_or_else(|| "localhost".into()));
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
    leaf.use_authority_key_identifier_extension = true;
    leaf.not_before = rcgen::date_time_ymd(year - 1, 1, 1);
    // At least a year left whatever the day it is made (`kevlar doctor` warns under 30 days).
    leaf.not_after = rcgen::date_time_ymd(year + 2, 1, 1);
    let leaf_key = KeyPair::generate()?;
    let leaf_cert = leaf.signed_by(&leaf_key, &ca_cert, &ca_key)?;

    let write = |name: &str, body: &str, mode: u32| -> anyhow::Result<()> {
        let p = out.join(name);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&p)
            .with_context(|| format!("cannot write {}", p.display()))?;
        f.write_all(body.as_bytes())?;
        Ok(())
    };
    write("ca.pem", &ca_cert.pem(), 0o644)?;
    write("cert.pem", &format!("{}{}", leaf_cert.pem(), ca_cert.pem()), 0o644)?;
    write("key.pem", &leaf_key.serialize_pem(), 0o600)?;
    println!(
        "wrote {dir}/cert.pem, {dir}/key.pem (for {hosts}) and {dir}/ca.pem (trust this CA in your browser or client)\n\
         try: kevlar guard --upstream http://127.0.0.1:3000 --tls-listen 127.0.0.1:8443 --tls-cert {dir}/cert.pem --tls-key {dir}/key.pem",
        dir = out.display(),
        hosts = hosts.join(", ")
    );
    Ok(ExitCode::SUCCESS)
}
