//! The request checks Kevlar does itself (percent-decoding, UTF-8, Host, Content-Length) and the
//! client-address resolution from X-Forwarded-For must never panic on hostile input.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let split = data.iter().position(|&b| b == b'\n').unwrap_or(data.len());
    let (target, rest) = data.split_at(split);
    let mut buf = Vec::new();
    if let Ok(t) = std::str::from_utf8(target) {
        let _ = kevlar_proxy::validate::check_component(t, &mut buf);
        if let Ok(uri) = t.parse::<http::Uri>() {
            let mut headers = http::HeaderMap::new();
            for line in rest.split(|&b| b == b'\n') {
                let Some(colon) = line.iter().position(|&b| b == b':') else { continue };
                let (Ok(name), Ok(value)) =
                    (http::HeaderName::from_bytes(&line[..colon]), http::HeaderValue::from_bytes(&line[colon + 1..]))
                else {
                    continue;
                };
                headers.append(name, value);
            }
            let _ = kevlar_proxy::validate::check(&http::Method::GET, &uri, &headers);
            let trusted: Vec<ipnet::IpNet> = vec!["10.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()];
            let ip = kevlar_proxy::client_ip::resolve("10.0.0.1".parse().unwrap(), &headers, &trusted);
            let _ = ip;
        }
    }
});
