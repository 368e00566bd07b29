//! One request through the guard, in phases (in the spirit of Pingora's `ProxyHttp`): admit (bans,
//! rate limits), validate (the request line and head), prepare (headers only Kevlar may set,
//! upgrades), inspect (the gate: detection and logins, the body's start read ahead), forward (a
//! slot, an instance, attempts), respond (tunnels, the gate's look at the answer, headers, the
//! access log). A phase that refuses returns a [`Fault`]; `handle` answers it with Kevlar's page.

use kevlar_core::event::capped;

use super::fault::{Fault, Party};
use super::tunnel::{tunnel, TUNNEL_IDLE_MIN};
use super::*;
use crate::body::BodyError;
use crate::upstream::{Lease, UpstreamSlots};

/// Per-request facts kept for events and the access log. Cheap clones of the request's own
/// buffers; turned into text only when an event or a log line needs it.
pub(super) struct ReqInfo {
    started: Instant,
    request_id: RequestId,
    request_id_value: HeaderValue,
    client_ip: IpAddr,
    method: http::Method,
    uri: http::Uri,
    host: Option<HeaderValue>,
    user_agent: Option<HeaderValue>,
    version: &'static str,
    /// Detectors flagged the request (for the route inventory).
    flagged: std::sync::atomic::AtomicBool,
    /// Refused at the edge (banned, rate limited): not a fact about the app's routes.
    edge_refused: std::sync::atomic::AtomicBool,
}

impl ReqInfo {
    fn new(ctx: &ConnCtx, req: &Request<Incoming>, trusted: &[IpNet]) -> ReqInfo {
        let request_id = RequestId::random();
        ReqInfo {
            started: Instant::now(),
            request_id,
            request_id_value: HeaderValue::from_bytes(&request_id.to_hex()).unwrap_or(HeaderValue::from_static("0")),
            client_ip: client_ip::resolve(ctx.peer_ip, req.headers(), trusted),
            method: req.method().clone(),
            uri: req.uri().clone(),
            host: req.headers().get(header::HOST).cloned(),
            user_agent: req.headers().get(header::USER_AGENT).cloned(),
            version: version_str(req.version()),
            flagged: std::sync::atomic::AtomicBool::new(false),
            edge_refused: std::sync::atomic::AtomicBool::new(false),
        }
    }

    fn path(&self) -> &str {
        self.uri.path()
    }
    fn path_text(&self) -> String {
        capped(self.uri.path(), 2048)
    }
    fn query_text(&self) -> Option<String> {
        self.uri.query().map(|q| kevlar_core::event::redacted_query(q, 2048))
    }
    fn host_text(&self) -> Option<String> {
        match &self.host {
            Some(h) => h.to_str().ok().map(|s| capped(s, 512)),
            None => self.uri.authority().map(|a| capped(a.as_str(), 512)),
        }
    }
    fn ua_text(&self) -> Option<String> {
        self.user_agent.as_ref().and_then(|v| v.to_str().ok()).map(|s| capped(s, 512))
    }
    fn rid(&self) -> &str {
        self.request_id_value.to_str().unwrap_or("")
    }
    fn meta(&self) -> RequestMeta<'_> {
        RequestMeta {
            ip: self.client_ip,
            request_id: self.rid(),
            method: self.method.as_str(),
            path: self.uri.path(),
            query: self.uri.query(),
            user_agent: self.user_agent.as_ref().and_then(|v| v.to_str().ok()),
        }
    }
}

/// The request after `prepare`: its head and body, and what the later phases need to know.
struct Prepared {
    parts: http::request::Parts,
    body: RequestBody,
    upgrade: bool,
    /// Bodiless, with a safe method, under `kevlar run`: may be sent again to another instance.
    retryable: bool,
    client_upgrade: Option<hyper::upgrade::OnUpgrade>,
    ws_scan: Option<Box<dyn kevlar_core::MessageScan>>,
}

/// The app's answer and what it holds: an instance's lease and the request's upstream slots.
struct Answer {
    resp: Response<Incoming>,
    lease: Lease,
    slots: UpstreamSlots,
    /// The connection it came on, back to the worker's pool when the body is done.
    conn: Option<crate::pool::Lent>,
}

/// What `respond` needs of a request that reached the app.
struct Passed {
    answer: Answer,
    client_upgrade: Option<hyper::upgrade::OnUpgrade>,
    ws_scan: Option<Box<dyn kevlar_core::MessageScan>>,
    request_ctx: Option<Box<kevlar_core::RequestContext>>,
}

/// Attempts at most for one request, across instances that die under it.
const MAX_ATTEMPTS: u32 = 5;

impl Worker {
    /// One request, phase by phase; a phase that refuses answers with Kevlar's own page.
    pub(super) async fn handle(&self, ctx: Arc<ConnCtx>, req: Request<Incoming>) -> Response<ResponseBody> {
        let in_flight = ctx.state.begin();
        self.shared.stats.requests.fetch_add(1, Ordering::Relaxed);
        let info = ReqInfo::new(&ctx, &req, &self.shared.trusted);
        // Banned and rate-limited clients are refused before any other work.
        if let Err(f) = self.admit(&info) {
            return self.refuse(&ctx, &info, f, in_flight);
        }
        if ctx.redirect {
            return self.redirect(&ctx, &info, &req, in_flight);
        }
        if let Some((path, dedup)) = &self.shared.csp_reports {
            if info.path() == path {
                return self.csp_report(&ctx, &info, req, dedup, in_flight).await;
            }
        }
        match self.pass(&ctx, &info, req).await {
            Ok(passed) => self.respond(&ctx, &info, passed, in_flight),
            Err(f) => self.refuse(&ctx, &info, f, in_flight),
        }
    }

    /// Validate, prepare, inspect, forward: the request until the app's answer.
    async fn pass(&self, ctx: &ConnCtx, info: &ReqInfo, req: Request<Incoming>) -> Result<Passed, Fault> {
        let cl_and_te = ctx.state.take_cl_and_te();
        self.validate(info, &req)?;
        let mut p = self.prepare(info, req);
        let request_ctx = self.inspect(info, &mut p, cl_and_te).await?;
        let Prepared { parts, body, upgrade, retryable, client_upgrade, ws_scan } = p;
        let answer = self.forward(ctx, info, parts, body, upgrade, retryable).await?;
        Ok(Passed { answer, client_upgrade, ws_scan, request_ctx })
    }

    /// A CSP violation report (`[headers] csp_report_path`): answered by Kevlar, never forwarded;
    /// new violations become `csp_violation` events; `204` when it was one.
    async fn csp_report(
        &self,
        ctx: &ConnCtx,
        info: &ReqInfo,
        req: Request<Incoming>,
        dedup: &crate::csp_report::Dedup,
        in_flight: InFlight,
    ) -> Response<ResponseBody> {
        use crate::csp_report::{parse, MAX_BODY};
        if let Err(f) = self.validate(info, &req) {
            return self.refuse(ctx, info, f, in_flight);
        }
        if req.method() != http::Method::POST {
            let f = Fault::client(405, "csp_report_method", "CSP reports are sent with POST");
            return self.refuse(ctx, info, f, in_flight);
        }
        let limits = &self.shared.limits;
        let max = (MAX_BODY as u64).min(limits.max_body_bytes);
        let mut body = RequestBody::new(req.into_body(), max, limits.body_timeout, limits.body_min_rate);
        let bytes = match body.read_ahead(MAX_BODY + 1).await {
            Ok((b, true)) => b,
            Ok((_, false)) => return self.refuse(ctx, info, BodyError::TooLarge.into(), in_flight),
            Err(e) => return self.refuse(ctx, info, e.into(), in_flight),
        };
        let violations = match parse(&bytes) {
            Ok(v) => v,
            Err(bad) => return self.refuse(ctx, info, Fault::client(400, "bad_csp_report", bad.reason()), in_flight),
        };
        let now = kevlar_core::time::now_ms();
        for v in violations.iter().filter(|v| dedup.admit(v, now)) {
            let verb = if v.disposition == "report" { "would block" } else { "blocked" };
            let mut ev = SecurityEvent::new(
                action::CSP_VIOLATION,
                Category::Web,
                Severity::Notice,
                format!("CSP {verb} {} ({}) on {}", v.blocked, v.directive, v.document),
            )
            .with_kevlar("directive", v.directive.clone())
            .with_kevlar("blocked_uri", v.blocked.clone())
            .with_kevlar("document_uri", v.document.clone())
            .with_kevlar("disposition", v.disposition.clone());
            ev.source_ip = Some(info.client_ip);
            ev.http_method = Some(info.method.as_str().to_owned());
            ev.url_path = Some(info.path_text());
            ev.user_agent = info.ua_text();
            ev.request_id = Some(info.rid().to_owned());
            self.shared.bus.publish(ev);
        }
        let mut resp = Response::new(ResponseBody::full(Bytes::new(), Some(in_flight)));
        *resp.status_mut() = StatusCode::NO_CONTENT;
        resp.headers_mut().insert(X_REQUEST_ID, info.request_id_value.clone());
        self.shared.policy.apply(info.path(), resp.headers_mut(), false);
        self.log_access(info, 204, ctx.tls);
        resp
    }

    /// Kevlar's own page for a fault, after its event when one is due.
    fn refuse(&self, ctx: &ConnCtx, info: &ReqInfo, f: Fault, in_flight: InFlight) -> Response<ResponseBody> {
        if let (Some((action, severity)), Some(reason)) = (f.event(), f.reason) {
            self.event(info, action, severity, f.status, f.message.into_owned(), reason);
        }
        self.own_page_retry(ctx, info, f.status, f.retry_after, in_flight)
    }

    /// Bans and rate limits (the gate's `admit`).
    fn admit(&self, info: &ReqInfo) -> Result<(), Fault> {
        let Some(g) = &self.shared.gate else { return Ok(()) };
        g.admit(&info.meta()).map_err(|r| {
            info.edge_refused.store(true, Ordering::Relaxed);
            Fault::told(Party::Client, r.status).retry_after(r.retry_after)
        })
    }

    /// The request line and head: encodings, Host, methods, the declared body size.
    fn validate(&self, info: &ReqInfo, req: &Request<Incoming>) -> Result<(), Fault> {
        let mut checked = validate::check(req.method(), req.uri(), req.headers());
        // HTTP/1.1 requires Host (RFC 9112 §3.2); an HTTP/2 `:authority` and a different `host`
        // are two answers to one question.
        if checked.is_ok() {
            let host = req.headers().get(header::HOST);
            checked = match (req.version(), host, req.uri().authority()) {
                (http::Version::HTTP_11, None, _) => Err(validate::Invalid::MissingHost),
                (http::Version::HTTP_2, Some(h), Some(a))
                    if !h.as_bytes().eq_ignore_ascii_case(a.as_str().as_bytes()) =>
                {
                    Err(validate::Invalid::BadHost)
                }
                _ => Ok(()),
            };
        }
        if let Err(inv) = checked {
            if let Some(rule) = inv.attack_rule() {
                self.protocol_attack(info, inv, rule);
                return Err(Fault::told(Party::Client, inv.status()));
            }
            return Err(Fault::client(inv.status(), inv.reason(), format!("request refused: {}", inv.reason())));
        }
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|s| s.trim().parse::<u64>().ok());
        if declared.is_some_and(|n| n > self.shared.limits.max_body_bytes) {
            return Err(BodyError::TooLarge.into());
        }
        Ok(())
    }

    /// A URL that is an attack on the protocol itself: a `malicious_attack` of family `protocol`.
    fn protocol_attack(&self, info: &ReqInfo, inv: validate::Invalid, rule: &'static str) {
        let mut ev = SecurityEvent::new(
            action::MALICIOUS_ATTACK,
            Category::IntrusionDetection,
            Severity::Warning,
            format!("protocol attempt in the URL: {}; refused", inv.reason()),
        )
        .with_outcome(Outcome::Failure)
        .with_kevlar("family", "protocol")
        .with_kevlar("rule", rule)
        .with_kevlar("location", "url")
        .with_kevlar("score", 8)
        .with_kevlar("blocked", true);
        ev.rule_id = Some(format!("kevlar.protocol.{rule}"));
        ev.rule_name = Some(rule.to_owned());
        ev.source_ip = Some(info.client_ip);
        ev.http_method = Some(info.method.as_str().to_owned());
        ev.url_path = Some(info.path_text());
        ev.url_query = info.query_text();
        ev.user_agent = info.ua_text();
        ev.status_code = Some(inv.status());
        ev.request_id = Some(info.rid().to_owned());
        self.shared.bus.publish(ev);
    }

    /// The head as the app may see it: no `Kevlar-*` claims, no upgrade but WebSocket.
    fn prepare(&self, info: &ReqInfo, mut req: Request<Incoming>) -> Prepared {
        let upgrade = forward::wants_upgrade(req.headers());
        // Under `kevlar run`, a request without a body and with a safe method can be sent again
        // when the instance it went to died under it (a crash, a restart): the client never sees
        // the failure. A fixed upstream needs no copy: the pool itself retries a stale connection.
        let retryable = self.shared.upstream.is_supervised()
            && !upgrade
            && http_body::Body::is_end_stream(req.body())
            && matches!(*req.method(), http::Method::GET | http::Method::HEAD | http::Method::OPTIONS);
        let client_upgrade = upgrade.then(|| hyper::upgrade::on(&mut req));
        let (mut parts, body) = req.into_parts();
        // Headers only Kevlar may tell the app (`Kevlar-Breached-Password`, …): a client's own
        // claims never reach it.
        let claimed: Vec<header::HeaderName> =
            parts.headers.keys().filter(|n| n.as_str().starts_with("kevlar-")).cloned().collect();
        for n in claimed {
            parts.headers.remove(n);
        }
        // Only WebSocket switches protocols through Kevlar: after an `h2c` (or any other) upgrade
        // the connection would be a tunnel nobody inspects.
        if !upgrade {
            parts.headers.remove(header::UPGRADE);
            parts.headers.remove("http2-settings");
        }
        // With `[detect] websocket = true`, the tunnel's messages are read; compression
        // (permessage-deflate) is then not offered to the app, so that every frame stays readable.
        let ws_scan = match (&self.shared.gate, upgrade) {
            (Some(g), true) => g.websocket(&info.meta()),
            _ => None,
        };
        if ws_scan.is_some() {
            parts.headers.remove(header::SEC_WEBSOCKET_EXTENSIONS);
        }
        let limits = &self.shared.limits;
        let body = RequestBody::new(body, limits.max_body_bytes, limits.body_timeout, limits.body_min_rate);
        Prepared { parts, body, upgrade, retryable, client_upgrade, ws_scan }
    }

    /// The gate's `inspect`: detection and logins over the head and the body's start (read ahead
    /// here); the rest of the body is seen as it streams.
    async fn inspect(
        &self,
        info: &ReqInfo,
        p: &mut Prepared,
        cl_and_te: Option<u64>,
    ) -> Result<Option<Box<kevlar_core::RequestContext>>, Fault> {
        let Some(g) = &self.shared.gate else { return Ok(None) };
        let meta = info.meta();
        let ct = p.parts.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
        let want = if http_body::Body::is_end_stream(&p.body) { 0 } else { g.body_prefix(&meta, ct) };
        let (ahead, complete) = if want > 0 { p.body.read_ahead(want).await? } else { (Bytes::new(), true) };
        // hyper keeps only `Transfer-Encoding` of a head that declared both (RFC 9112 §6.3): the
        // detectors see the pair the client sent.
        let as_sent;
        let headers = match cl_and_te {
            Some(cl) if !p.parts.headers.contains_key(header::CONTENT_LENGTH) => {
                let mut h = p.parts.headers.clone();
                h.insert(header::CONTENT_LENGTH, HeaderValue::from(cl));
                as_sent = h;
                &as_sent
            }
            _ => &p.parts.headers,
        };
        let view = RequestView {
            method: p.parts.method.as_str(),
            path: p.parts.uri.path(),
            query: p.parts.uri.query(),
            headers,
            body: &ahead,
            body_complete: complete,
        };
        let verdict = g.inspect(&meta, &view);
        info.flagged.store(verdict.flagged, Ordering::Relaxed);
        if let Decision::Refuse { status, .. } = verdict.decision {
            return Err(Fault::told(Party::Client, status).retry_after(verdict.retry_after));
        }
        for (name, value) in verdict.add_headers {
            p.parts.headers.insert(name, value);
        }
        if let Some(d) = verdict.delay {
            tokio::time::sleep(d).await;
        }
        p.body.scanned(verdict.body);
        Ok(verdict.context)
    }

    /// A slot for the app, an instance, the request; sent again to another instance when one
    /// dies under a request that can be repeated.
    async fn forward(
        &self,
        ctx: &ConnCtx,
        info: &ReqInfo,
        parts: http::request::Parts,
        body: RequestBody,
        upgrade: bool,
        retryable: bool,
    ) -> Result<Answer, Fault> {
        let limits = &self.shared.limits;
        let saved = retryable.then(|| (parts.method.clone(), parts.uri.clone(), parts.version, parts.headers.clone()));
        let client_value =
            if info.client_ip == ctx.peer_ip { ctx.peer_value.clone() } else { ip_value(info.client_ip) };
        let finfo = ForwardInfo {
            client_value,
            peer_ip: ctx.peer_ip,
            peer_trusted: client_ip::is_trusted(ctx.peer_ip, &self.shared.trusted),
            tls: ctx.tls,
            request_id: info.request_id_value.clone(),
            upgrade,
        };
        let slots = tokio::time::timeout(
            limits.upstream_timeout,
            UpstreamSlots::acquire(&ctx.upstream_slots, &self.shared.upstream_slots),
        )
        .await;
        let Ok(Some(slots)) = slots else {
            return Err(Fault::busy("upstream_busy", "too many requests already waiting for the application"));
        };
        let mut next = Some((parts, body));
        let mut failed_backends: Vec<u64> = Vec::new();
        for attempt in 1..=MAX_ATTEMPTS {
            let Some((parts, body)) = next.take() else { break };
            let lease = self
                .shared
                .upstream
                .pick_or_wait_except(&failed_backends)
                .await
                .map_err(|_| Fault::told(Party::Kevlar, 503))?;
            let failed = body.failed.clone();
            let upstream_req = forward::prepare(parts, body, &lease.backend().authority, &finfo)
                .map_err(|_| Fault::client(400, "bad_target", "request target cannot be forwarded"))?;
            let authority = lease.backend().authority.clone();
            let sent = self.pool.send(upstream_req, &authority, !upgrade);
            let e = match tokio::time::timeout(limits.upstream_timeout, sent).await {
                Ok(Ok((resp, conn))) => return Ok(Answer { resp, lease, slots, conn }),
                Ok(Err(e)) => e,
                Err(_) => {
                    self.shared.stats.upstream_errors.fetch_add(1, Ordering::Relaxed);
                    return Err(Fault::upstream(504, "upstream_timeout", "the application did not answer in time"));
                }
            };
            // The body was cut off (too large, stalled, refused by inspection): the client's fault.
            if let Some(b) = failed.get() {
                return Err(b.into());
            }
            let fault = Fault::upstream(502, "upstream_error", "the application did not accept the request");
            lease.backend().mark_failed();
            // A supervised instance that failed is dying: wait for another.
            failed_backends.push(lease.backend().id);
            drop(lease);
            if let (Some(head), true) = (&saved, fault.retry_safe() && attempt < MAX_ATTEMPTS) {
                next = Some((again(head), RequestBody::empty()));
                tracing::debug!(request_id = %info.request_id, error = %e, "upstream failed; sending the request again");
                continue;
            }
            self.shared.stats.upstream_errors.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(request_id = %info.request_id, error = %e, "upstream request failed");
            return Err(fault);
        }
        Err(Fault::told(Party::Upstream, 502))
    }

    /// The app's answer to the client: a WebSocket tunnel, the gate's look at the answer (logins),
    /// hop-by-hop headers out, the security headers in, the access log.
    fn respond(&self, ctx: &ConnCtx, info: &ReqInfo, passed: Passed, in_flight: InFlight) -> Response<ResponseBody> {
        let Passed { answer: Answer { mut resp, lease, slots, conn }, client_upgrade, ws_scan, request_ctx } = passed;
        let switching = resp.status() == StatusCode::SWITCHING_PROTOCOLS;
        if switching {
            // A 101 nobody asked for cannot be relayed.
            let Some(client_up) = client_upgrade else {
                let f = Fault::upstream(502, "unexpected_101", "the application switched protocols unasked");
                return self.refuse(ctx, info, f, in_flight);
            };
            ctx.state.mark_upgraded();
            let upstream_up = hyper::upgrade::on(&mut resp);
            let idle = self.shared.limits.idle_timeout.max(TUNNEL_IDLE_MIN);
            tokio::spawn(async move {
                match tokio::try_join!(client_up, upstream_up) {
                    Ok((c, u)) => tunnel(TokioIo::new(c), TokioIo::new(u), idle, ws_scan).await,
                    Err(e) => tracing::debug!(error = %e, "upgrade failed"),
                }
            });
        }
        let (mut parts, body) = resp.into_parts();
        let watch = match (&self.shared.gate, switching) {
            (Some(g), false) => {
                g.respond(&info.meta(), request_ctx.as_deref(), parts.status.as_u16(), &mut parts.headers)
            }
            _ => None,
        };
        forward::clean_response(&mut parts.headers, switching);
        self.shared.policy.apply(info.path(), &mut parts.headers, true);
        let rewrite = if switching { None } else { self.nonce(info, &mut parts) };
        self.log_access(info, parts.status.as_u16(), ctx.tls);
        Response::from_parts(
            parts,
            ResponseBody::upstream(body, Some(in_flight), Some(lease))
                .watched(watch)
                .holding(slots)
                .rewritten(rewrite)
                .returning(conn),
        )
    }

    /// `[headers] csp_nonce`: the nonce in an HTML answer's policy and the rewriter for its body;
    /// a page that cannot be rewritten keeps its policy and is reported (once per path and reason
    /// in 10 minutes).
    fn nonce(&self, info: &ReqInfo, parts: &mut http::response::Parts) -> Option<crate::nonce::Rewrite> {
        let dedup = self.shared.csp_nonce.as_ref()?;
        let status = parts.status.as_u16();
        let mut template = SecurityEvent::new(
            action::MALICIOUS_ATTACK,
            Category::IntrusionDetection,
            Severity::Warning,
            "xss attempt in the answer: a script repeats the request's input; emptied, no nonce",
        )
        .with_outcome(Outcome::Failure)
        .with_kevlar("family", "xss")
        .with_kevlar("rule", "reflected_script")
        .with_kevlar("location", "response");
        template.source_ip = Some(info.client_ip);
        template.http_method = Some(info.method.as_str().to_owned());
        template.url_path = Some(info.path_text());
        template.url_query = info.query_text();
        template.user_agent = info.ua_text();
        template.status_code = Some(status);
        template.request_id = Some(info.rid().to_owned());
        template.rule_id = Some("kevlar.xss.reflected_script".to_owned());
        template.rule_name = Some("reflected_script".to_owned());
        let bus = self.shared.bus.clone();
        let on_reflected: crate::nonce::OnReflected = Box::new(move |script: &str| {
            bus.publish(template.clone().with_kevlar("excerpt", kevlar_core::event::capped(script, 256)));
        });
        let inputs = crate::nonce::inputs(info.uri.query());
        match crate::nonce::prepare(&info.method, status, &mut parts.headers, inputs, on_reflected) {
            Ok(r) => r,
            Err(why) => {
                if dedup.admit_key((info.path(), why.as_str()), kevlar_core::time::now_ms()) {
                    self.event(
                        info,
                        action::CSP_NONCE_UNAVAILABLE,
                        Severity::Notice,
                        status,
                        format!("no CSP nonce on {}: {}; its policy is left as it was", info.path_text(), why.as_str()),
                        why.as_str(),
                    );
                }
                None
            }
        }
    }

    pub(super) fn count_status(&self, status: u16) {
        let s = &self.shared.stats;
        if (400..500).contains(&status) {
            s.responses_4xx.fetch_add(1, Ordering::Relaxed);
        } else if status >= 500 {
            s.responses_5xx.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(super) fn event(
        &self,
        info: &ReqInfo,
        action: &str,
        severity: Severity,
        status: u16,
        message: String,
        reason: &str,
    ) {
        let category = if action.starts_with("sys_") { Category::Process } else { Category::Web };
        let mut ev = SecurityEvent::new(action, category, severity, message)
            .with_outcome(Outcome::Failure)
            .with_kevlar("reason", reason);
        ev.source_ip = Some(info.client_ip);
        ev.http_method = Some(info.method.as_str().to_owned());
        ev.url_path = Some(info.path_text());
        ev.url_query = info.query_text();
        ev.user_agent = info.ua_text();
        ev.status_code = Some(status);
        ev.request_id = Some(info.rid().to_owned());
        self.shared.bus.publish(ev);
    }

    pub(super) fn log_access(&self, info: &ReqInfo, status: u16, tls: bool) {
        self.count_status(status);
        if let Some(g) = self.shared.gate.as_ref().filter(|_| !info.edge_refused.load(Ordering::Relaxed)) {
            g.observe(&info.meta(), status, info.flagged.load(Ordering::Relaxed));
        }
        if let Some(a) = &self.shared.access {
            a.log(AccessRecord {
                timestamp_ms: kevlar_core::time::now_ms(),
                request_id: info.rid().to_owned(),
                client_ip: info.client_ip,
                method: info.method.as_str().to_owned(),
                path: info.path_text(),
                query: info.query_text(),
                host: info.host_text(),
                version: info.version,
                status,
                duration_us: info.started.elapsed().as_micros() as u64,
                user_agent: info.ua_text(),
                tls,
            });
        }
    }

    /// Kevlar's own answer, with the security headers and the request id.
    pub(super) fn own_page(
        &self,
        ctx: &ConnCtx,
        info: &ReqInfo,
        status: u16,
        in_flight: InFlight,
    ) -> Response<ResponseBody> {
        self.own_page_retry(ctx, info, status, None, in_flight)
    }

    pub(super) fn own_page_retry(
        &self,
        ctx: &ConnCtx,
        info: &ReqInfo,
        status: u16,
        retry_after: Option<u64>,
        in_flight: InFlight,
    ) -> Response<ResponseBody> {
        let mut resp = Response::new(ResponseBody::full(pages::page(status, info.rid()), Some(in_flight)));
        *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let h = resp.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        h.insert(X_REQUEST_ID, info.request_id_value.clone());
        if status == 503 {
            h.insert(header::RETRY_AFTER, HeaderValue::from_static("2"));
        }
        if let Some(secs) = retry_after {
            h.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if matches!(status, 400 | 408 | 413 | 431) {
            ctx.state.linger_on_close();
            // The rest of the request cannot be trusted or is not wanted: do not reuse the connection.
            h.insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        self.shared.policy.apply(info.path(), h, false);
        self.log_access(info, status, ctx.tls);
        resp
    }

    fn redirect(
        &self,
        ctx: &ConnCtx,
        info: &ReqInfo,
        req: &Request<Incoming>,
        in_flight: InFlight,
    ) -> Response<ResponseBody> {
        let port = self.shared.tls_port.load(Ordering::Relaxed);
        let host = info.host_text().and_then(|h| h.parse::<http::uri::Authority>().ok()).map(|a| a.host().to_owned());
        let Some(host) = host else {
            return self.own_page(ctx, info, 400, in_flight);
        };
        let host = if host.contains(':') && !host.starts_with('[') { format!("[{host}]") } else { host };
        let pq = req.uri().path_and_query().map(|p| p.as_str()).unwrap_or("/");
        let location = if port == 443 { format!("https://{host}{pq}") } else { format!("https://{host}:{port}{pq}") };
        let mut resp = Response::new(ResponseBody::full(Bytes::new(), Some(in_flight)));
        *resp.status_mut() = StatusCode::MOVED_PERMANENTLY;
        match HeaderValue::from_str(&location) {
            Ok(v) => {
                resp.headers_mut().insert(header::LOCATION, v);
            }
            Err(_) => *resp.status_mut() = StatusCode::BAD_REQUEST,
        }
        self.shared.policy.apply(info.path(), resp.headers_mut(), false);
        self.log_access(info, resp.status().as_u16(), false);
        resp
    }
}

/// A bodiless request's head again, for another instance.
fn again(
    (method, uri, version, headers): &(http::Method, http::Uri, http::Version, http::HeaderMap),
) -> http::request::Parts {
    let mut again = Request::new(());
    *again.method_mut() = method.clone();
    *again.uri_mut() = uri.clone();
    *again.version_mut() = *version;
    *again.headers_mut() = headers.clone();
    again.into_parts().0
}
