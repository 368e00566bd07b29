//! One instance slot's life: start, wait until ready, route, watch (exit, health, commands),
//! restart with backoff, give up (`errored`), replace on reload, stop.

use kevlar_core::action;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kevlar_core::{Category, Outcome, SecurityEvent, Severity};
use kevlar_engine::Bus;
use tokio::sync::{mpsc, watch};

use crate::instance::{probe, wait_ready, AppLogs, Instance, NotReady};
use crate::{describe_exit, free_port, AppSpec, HealthState, InstanceState, InstanceStatus, Router, SlotCmd, Status};

pub(crate) struct Slot {
    pub index: usize,
    pub spec: Arc<AppSpec>,
    pub bus: Bus,
    pub router: Arc<dyn Router>,
    pub logs: AppLogs,
    pub status: Status,
    pub first_port: Option<u16>,
}

/// The restart policy's memory across one slot's instances.
struct Restarts {
    /// The next backoff delay.
    backoff: Duration,
    /// Crashes within `backoff.window` of runs shorter than `min_uptime`.
    fast_crashes: VecDeque<Instant>,
    /// Why the next instance starts, for its `sys_restart`.
    reason: Option<&'static str>,
}

impl Restarts {
    fn reset(&mut self, spec: &AppSpec) {
        self.fast_crashes.clear();
        self.backoff = spec.backoff.first;
    }

    /// The delay before the restart after a crash, or `None`: too many fast crashes, give up.
    /// At once after a run of `min_uptime`; at once too for the first fast crash of an instance
    /// that was serving (as pm2 and forever do: a crash is most often a one-off); then the
    /// backoff, growing.
    fn after_crash(&mut self, spec: &AppSpec, uptime: Duration, was_ready: bool) -> Option<Duration> {
        if uptime >= spec.backoff.min_uptime {
            self.reset(spec);
            return Some(Duration::ZERO);
        }
        let now = Instant::now();
        let first = self.fast_crashes.is_empty();
        self.fast_crashes.push_back(now);
        while self.fast_crashes.front().is_some_and(|t| now.duration_since(*t) > spec.backoff.window) {
            self.fast_crashes.pop_front();
        }
        if self.fast_crashes.len() as u32 >= spec.backoff.max_fast_crashes {
            return None;
        }
        if first && was_ready {
            return Some(Duration::ZERO);
        }
        let d = self.backoff;
        self.backoff = self.backoff.mul_f64(spec.backoff.factor.max(1.0)).min(spec.backoff.max);
        Some(d)
    }
}

enum Exit {
    Crashed(std::io::Result<std::process::ExitStatus>),
    NotReady(String),
    Hang,
    Manual,
    Stop,
}

impl Slot {
    fn set(&self, f: impl FnOnce(&mut InstanceStatus)) {
        if let Ok(mut s) = self.status.lock() {
            if let Some(st) = s.get_mut(self.index) {
                f(st);
            }
        }
    }

    /// Tells the router whether waiting for an instance still makes sense.
    fn update_holding(&self) {
        let all_errored =
            self.status.lock().map(|s| s.iter().all(|i| i.state == InstanceState::Errored)).unwrap_or(false);
        self.router.hold_requests(!all_errored);
    }

    fn publish(&self, ev: SecurityEvent) {
        self.bus.publish(ev.with_kevlar("instance", self.index as u64));
    }

    fn port(&mut self) -> u16 {
        self.first_port.take().or_else(|| free_port().ok()).unwrap_or(0)
    }

    /// Drains `id` from the router (bounded by the stop grace) before its instance is stopped.
    async fn drain(&self, id: u64) {
        let outstanding = self.router.remove(id);
        let deadline = Instant::now() + self.spec.stop_grace;
        while outstanding() > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn stop_instance(&self, inst: &mut Instance) {
        if inst.stop(self.spec.stop_grace).await {
            tracing::warn!(
                instance = self.index,
                "the application ignored SIGTERM for {:?}; sent SIGKILL",
                self.spec.stop_grace
            );
        }
    }

    /// Starts a successor, waits until it is ready, routes to it, drains and stops the old one.
    async fn replace(&mut self, inst: &mut Instance, backend: &mut Option<u64>) -> Result<(), String> {
        let port = free_port().map_err(|e| kevlar_core::error::chain(&e))?;
        let mut next =
            Instance::spawn(&self.spec, port, self.index, &self.logs).map_err(|e| kevlar_core::error::chain(&e))?;
        if let Err(why) = wait_ready(&mut next, &self.spec).await {
            next.stop(Duration::from_millis(500)).await;
            let tail = next.stderr_tail();
            let last = tail.last().map(|l| format!(" (stderr: {l})")).unwrap_or_default();
            return Err(format!("the new instance {}{last}; the old one keeps serving", why.describe()));
        }
        let new_id = self.router.add(next.addr());
        if let Some(old) = backend.replace(new_id) {
            self.drain(old).await;
        }
        let mut old = std::mem::replace(inst, next);
        self.stop_instance(&mut old).await;
        self.set(|s| {
            s.pid = inst.pid;
            s.port = Some(inst.port);
            s.started_ms = Some(kevlar_core::time::now_ms());
            s.health = HealthState::Ok;
        });
        Ok(())
    }

    pub async fn run(mut self, mut cmds: mpsc::Receiver<SlotCmd>, mut stop: watch::Receiver<bool>) {
        let spec = self.spec.clone();
        let mut r = Restarts { backoff: spec.backoff.first, fast_crashes: VecDeque::new(), reason: None };
        while !*stop.borrow() {
            let port = self.port();
            let mut inst = match Instance::spawn(&spec, port, self.index, &self.logs) {
                Ok(i) => i,
                Err(e) => {
                    if !self.cannot_start(&e, &mut cmds, &mut stop).await {
                        break;
                    }
                    continue;
                }
            };
            let (exit, was_ready) = self.live(&mut inst, &mut r, &mut cmds, &mut stop).await;
            match exit {
                Exit::Stop => {
                    self.set(|s| s.state = InstanceState::Stopping);
                    self.stop_instance(&mut inst).await;
                    break;
                }
                Exit::Hang => {
                    self.hung(&mut inst).await;
                    r.reason = Some("hang");
                }
                Exit::Manual => {
                    self.stop_instance(&mut inst).await;
                    self.set(|s| {
                        s.restarts += 1;
                        s.state = InstanceState::Restarting;
                    });
                    r.reset(&spec);
                    r.reason = Some("manual");
                }
                exit @ (Exit::Crashed(_) | Exit::NotReady(_)) => {
                    if !self.crashed(&mut inst, exit, was_ready, &mut r, &mut cmds, &mut stop).await {
                        break;
                    }
                }
            }
        }
        self.set(|s| {
            s.state = InstanceState::Stopped;
            s.pid = None;
        });
    }

    /// The application cannot be started at all (no such program, …): `errored` until
    /// `kevlar restart` (true) or the stop (false).
    async fn cannot_start(
        &self,
        e: &crate::SupervisorError,
        cmds: &mut mpsc::Receiver<SlotCmd>,
        stop: &mut watch::Receiver<bool>,
    ) -> bool {
        let why = kevlar_core::error::chain(e);
        tracing::error!(instance = self.index, error = %why, "cannot start the application");
        self.set(|s| {
            s.state = InstanceState::Errored;
            s.last_exit = Some(why.clone());
        });
        self.update_holding();
        self.publish(
            SecurityEvent::new(
                action::SYS_ERRORED,
                Category::Process,
                Severity::Alert,
                format!("the application cannot be started: {why}"),
            )
            .with_outcome(Outcome::Failure),
        );
        if !self.wait_for_restart(cmds, stop).await {
            return false;
        }
        self.set(|s| s.state = InstanceState::Restarting);
        self.update_holding();
        true
    }

    /// An instance from its start until it exits, hangs, is restarted or Kevlar stops; whether it
    /// became ready.
    async fn live(
        &mut self,
        inst: &mut Instance,
        r: &mut Restarts,
        cmds: &mut mpsc::Receiver<SlotCmd>,
        stop: &mut watch::Receiver<bool>,
    ) -> (Exit, bool) {
        self.set(|s| {
            s.state = InstanceState::Starting;
            s.pid = inst.pid;
            s.port = Some(inst.port);
            s.health = HealthState::Unknown;
        });
        let ready = tokio::select! {
            r = wait_ready(inst, &self.spec) => r,
            _ = stop.changed() => Err(NotReady::Timeout(String::new())),
        };
        match ready {
            Err(_) if *stop.borrow() => (Exit::Stop, false),
            Err(NotReady::Exited(status)) => (Exit::Crashed(Ok(status)), false),
            Err(NotReady::Timeout(why)) => (Exit::NotReady(why), false),
            Ok(()) => {
                let mut backend = Some(self.router.add(inst.addr()));
                self.set(|s| {
                    s.state = InstanceState::Running;
                    s.started_ms = Some(kevlar_core::time::now_ms());
                    s.health = HealthState::Ok;
                });
                if let Some(reason) = r.reason.take() {
                    self.publish(
                        SecurityEvent::new(
                            action::SYS_RESTART,
                            Category::Process,
                            Severity::Notice,
                            format!("the application is running again ({reason})"),
                        )
                        .with_outcome(Outcome::Success)
                        .with_kevlar("reason", reason),
                    );
                }
                let exit = self.watch(inst, &mut backend, cmds, stop).await;
                if let Some(id) = backend.take() {
                    let _ = self.router.remove(id);
                }
                (exit, true)
            }
        }
    }

    /// Health checks failed `health.failures` times in a row: the group is killed, `sys_crash`
    /// with `reason: hang`.
    async fn hung(&self, inst: &mut Instance) {
        let why = format!("no answer to {} health checks in a row", self.spec.health.failures);
        tracing::warn!(instance = self.index, "{why}; restarting the application");
        inst.kill_group();
        let _ = inst.child.wait().await;
        self.publish(
            SecurityEvent::new(
                action::SYS_CRASH,
                Category::Process,
                Severity::Alert,
                format!("the application hung: {why}"),
            )
            .with_outcome(Outcome::Failure)
            .with_kevlar("reason", "hang")
            .with_kevlar("uptime_ms", inst.started.elapsed().as_millis() as u64)
            .with_kevlar("stderr_tail", inst.stderr_tail()),
        );
        self.set(|s| {
            s.restarts += 1;
            s.last_exit = Some("killed: hang".into());
            s.state = InstanceState::Restarting;
        });
    }

    /// A crash, or an instance that never became ready: `sys_crash`, then the restart — at once
    /// after a long enough run or for the first crash of an instance that was serving, after a
    /// growing backoff for further fast crashes, never (`errored`) after `max_fast_crashes`.
    /// False when Kevlar stops meanwhile.
    async fn crashed(
        &self,
        inst: &mut Instance,
        exit: Exit,
        was_ready: bool,
        r: &mut Restarts,
        cmds: &mut mpsc::Receiver<SlotCmd>,
        stop: &mut watch::Receiver<bool>,
    ) -> bool {
        let spec = &self.spec;
        let uptime = inst.started.elapsed();
        let (what, ev) = self.crash_event(inst, exit).await;
        self.set(|s| {
            s.restarts += 1;
            s.last_exit = Some(what.clone());
            s.pid = None;
            s.state = InstanceState::Restarting;
            s.health = HealthState::Unknown;
        });
        r.reason = Some("crash");
        let delay = match r.after_crash(spec, uptime, was_ready) {
            Some(d) => d,
            None => {
                self.publish(ev);
                return self.give_up(what, r, cmds, stop).await;
            }
        };
        self.publish(ev.with_kevlar("restart_in_ms", delay.as_millis() as u64));
        tracing::warn!(instance = self.index, "application stopped ({what}) after {uptime:?}; restarting in {delay:?}");
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = stop.changed() => return false,
            cmd = cmds.recv() => match cmd {
                Some(SlotCmd::Reload(ack)) => { let _ = ack.send(Err("the application is restarting after a crash".into())); }
                Some(SlotCmd::Restart) => r.reset(spec),
                None => {}
            },
        }
        true
    }

    /// What ended the instance, in words, and its `sys_crash` event (without the restart delay).
    async fn crash_event(&self, inst: &mut Instance, exit: Exit) -> (String, SecurityEvent) {
        let uptime = inst.started.elapsed();
        let (what, detail) = match exit {
            Exit::Crashed(Ok(status)) => describe_exit(status),
            Exit::Crashed(Err(e)) => (format!("wait failed: {e}"), serde_json::json!({})),
            Exit::NotReady(why) => {
                inst.kill_group();
                let _ = inst.child.wait().await;
                (why, serde_json::json!({ "reason": "not_ready" }))
            }
            _ => (String::new(), serde_json::json!({})),
        };
        inst.kill_group();
        let mut ev = SecurityEvent::new(
            action::SYS_CRASH,
            Category::Process,
            Severity::Alert,
            format!("the application stopped: {what}"),
        )
        .with_outcome(Outcome::Failure)
        .with_kevlar("uptime_ms", uptime.as_millis() as u64)
        .with_kevlar("stderr_tail", inst.stderr_tail());
        if let serde_json::Value::Object(m) = detail {
            for (k, v) in m {
                ev.kevlar.insert(k, v);
            }
        }
        (what, ev)
    }

    /// Too many fast crashes: `errored` (`sys_errored`) until `kevlar restart` (true) or the stop.
    async fn give_up(
        &self,
        last_exit: String,
        r: &mut Restarts,
        cmds: &mut mpsc::Receiver<SlotCmd>,
        stop: &mut watch::Receiver<bool>,
    ) -> bool {
        let msg = format!(
            "the application crashed {} times within {:?}; not restarting it until `kevlar restart`",
            r.fast_crashes.len(),
            self.spec.backoff.window
        );
        tracing::error!(instance = self.index, "{msg}");
        self.set(|s| s.state = InstanceState::Errored);
        self.update_holding();
        self.publish(
            SecurityEvent::new(action::SYS_ERRORED, Category::Process, Severity::Alert, msg)
                .with_outcome(Outcome::Failure)
                .with_kevlar("last_exit", last_exit),
        );
        if !self.wait_for_restart(cmds, stop).await {
            return false;
        }
        self.set(|s| s.state = InstanceState::Restarting);
        self.update_holding();
        r.reset(&self.spec);
        r.reason = Some("manual");
        true
    }

    /// In `errored`: answers reloads with an error until a restart (true) or a stop (false).
    async fn wait_for_restart(&self, cmds: &mut mpsc::Receiver<SlotCmd>, stop: &mut watch::Receiver<bool>) -> bool {
        loop {
            tokio::select! {
                _ = stop.changed() => return false,
                cmd = cmds.recv() => match cmd {
                    Some(SlotCmd::Restart) => return true,
                    Some(SlotCmd::Reload(ack)) => { let _ = ack.send(Err("the application is errored; use `kevlar restart`".into())); }
                    None => return false,
                },
            }
        }
    }

    /// Watches a running instance until it exits, hangs, is restarted, or Kevlar stops.
    async fn watch(
        &mut self,
        inst: &mut Instance,
        backend: &mut Option<u64>,
        cmds: &mut mpsc::Receiver<SlotCmd>,
        stop: &mut watch::Receiver<bool>,
    ) -> Exit {
        let spec = self.spec.clone();
        let mut tick = tokio::time::interval(spec.health.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        let mut failures = 0u32;
        loop {
            tokio::select! {
                status = inst.child.wait() => return Exit::Crashed(status),
                _ = tick.tick(), if spec.health.path.is_some() => {
                    if probe(inst.addr(), spec.health.path.as_deref(), spec.health.timeout).await {
                        if failures > 0 {
                            self.set(|s| s.health = HealthState::Ok);
                        }
                        failures = 0;
                    } else {
                        failures += 1;
                        self.set(|s| s.health = HealthState::Failing);
                        if failures >= spec.health.failures {
                            return Exit::Hang;
                        }
                    }
                }
                cmd = cmds.recv() => match cmd {
                    Some(SlotCmd::Reload(ack)) => {
                        let res = self.replace(inst, backend).await;
                        match &res {
                            Ok(()) => self.publish(
                                SecurityEvent::new(action::SYS_RESTART, Category::Process, Severity::Notice, "the application was reloaded")
                                    .with_outcome(Outcome::Success)
                                    .with_kevlar("reason", "reload"),
                            ),
                            Err(why) => self.publish(
                                SecurityEvent::new(action::SYS_RELOAD_FAIL, Category::Process, Severity::Warning, format!("reload failed: {why}"))
                                    .with_outcome(Outcome::Failure),
                            ),
                        }
                        let _ = ack.send(res);
                        failures = 0;
                    }
                    Some(SlotCmd::Restart) => return Exit::Manual,
                    None => {}
                },
                _ = stop.changed() => {
                    if let Some(id) = backend.take() {
                        self.drain(id).await;
                    }
                    return Exit::Stop;
                }
            }
        }
    }
}
