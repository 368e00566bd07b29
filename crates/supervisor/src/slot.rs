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
        let mut backoff = spec.backoff.first;
        let mut fast_crashes: VecDeque<Instant> = VecDeque::new();
        let mut restart_reason: Option<&'static str> = None;
        loop {
            if *stop.borrow() {
                break;
            }
            let port = self.port();
            let mut inst = match Instance::spawn(&spec, port, self.index, &self.logs) {
                Ok(i) => i,
                Err(e) => {
                    tracing::error!(instance = self.index, error = %kevlar_core::error::chain(&e), "cannot start the application");
                    self.set(|s| {
                        s.state = InstanceState::Errored;
                        s.last_exit = Some(kevlar_core::error::chain(&e));
                    });
                    self.update_holding();
                    self.publish(
                        SecurityEvent::new(
                            action::SYS_ERRORED,
                            Category::Process,
                            Severity::Alert,
                            format!("the application cannot be started: {}", kevlar_core::error::chain(&e)),
                        )
                        .with_outcome(Outcome::Failure),
                    );
                    if !self.wait_for_restart(&mut cmds, &mut stop).await {
                        break;
                    }
                    self.set(|s| s.state = InstanceState::Restarting);
                    self.update_holding();
                    continue;
                }
            };
            self.set(|s| {
                s.state = InstanceState::Starting;
                s.pid = inst.pid;
                s.port = Some(inst.port);
                s.health = HealthState::Unknown;
            });
            let ready = tokio::select! {
                r = wait_ready(&mut inst, &spec) => r,
                _ = stop.changed() => Err(NotReady::Timeout(String::new())),
            };
            let mut backend = None;
            let exit = match ready {
                Err(_) if *stop.borrow() => Exit::Stop,
                Err(NotReady::Exited(status)) => Exit::Crashed(Ok(status)),
                Err(NotReady::Timeout(why)) => Exit::NotReady(why),
                Ok(()) => {
                    backend = Some(self.router.add(inst.addr()));
                    self.set(|s| {
                        s.state = InstanceState::Running;
                        s.started_ms = Some(kevlar_core::time::now_ms());
                        s.health = HealthState::Ok;
                    });
                    if let Some(reason) = restart_reason.take() {
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
                    self.watch(&mut inst, &mut backend, &mut cmds, &mut stop).await
                }
            };
            if let Some(id) = backend.take() {
                let _ = self.router.remove(id);
            }
            match exit {
                Exit::Stop => {
                    self.set(|s| s.state = InstanceState::Stopping);
                    self.stop_instance(&mut inst).await;
                    self.set(|s| {
                        s.state = InstanceState::Stopped;
                        s.pid = None;
                    });
                    break;
                }
                Exit::Hang => {
                    let why = format!("no answer to {} health checks in a row", spec.health.failures);
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
                    restart_reason = Some("hang");
                    continue;
                }
                Exit::Manual => {
                    self.stop_instance(&mut inst).await;
                    self.set(|s| {
                        s.restarts += 1;
                        s.state = InstanceState::Restarting;
                    });
                    restart_reason = Some("manual");
                    fast_crashes.clear();
                    backoff = spec.backoff.first;
                    continue;
                }
                Exit::Crashed(_) | Exit::NotReady(_) => {}
            }
            // A crash, or an instance that never became ready.
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
            self.set(|s| {
                s.restarts += 1;
                s.last_exit = Some(what.clone());
                s.pid = None;
                s.state = InstanceState::Restarting;
                s.health = HealthState::Unknown;
            });
            restart_reason = Some("crash");
            let delay = if uptime >= spec.backoff.min_uptime {
                backoff = spec.backoff.first;
                Duration::ZERO
            } else {
                let now = Instant::now();
                fast_crashes.push_back(now);
                while fast_crashes.front().is_some_and(|t| now.duration_since(*t) > spec.backoff.window) {
                    fast_crashes.pop_front();
                }
                if fast_crashes.len() as u32 >= spec.backoff.max_fast_crashes {
                    self.publish(ev);
                    let msg = format!(
                        "the application crashed {} times within {:?}; not restarting it until `kevlar restart`",
                        fast_crashes.len(),
                        spec.backoff.window
                    );
                    tracing::error!(instance = self.index, "{msg}");
                    self.set(|s| s.state = InstanceState::Errored);
                    self.update_holding();
                    self.publish(
                        SecurityEvent::new(action::SYS_ERRORED, Category::Process, Severity::Alert, msg)
                            .with_outcome(Outcome::Failure)
                            .with_kevlar("last_exit", what),
                    );
                    if !self.wait_for_restart(&mut cmds, &mut stop).await {
                        break;
                    }
                    self.set(|s| s.state = InstanceState::Restarting);
                    self.update_holding();
                    fast_crashes.clear();
                    backoff = spec.backoff.first;
                    restart_reason = Some("manual");
                    continue;
                }
                let d = backoff;
                backoff = backoff.mul_f64(spec.backoff.factor.max(1.0)).min(spec.backoff.max);
                d
            };
            self.publish(ev.with_kevlar("restart_in_ms", delay.as_millis() as u64));
            tracing::warn!(
                instance = self.index,
                "application stopped ({what}) after {uptime:?}; restarting in {delay:?}"
            );
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = stop.changed() => break,
                cmd = cmds.recv() => match cmd {
                    Some(SlotCmd::Reload(ack)) => { let _ = ack.send(Err("the application is restarting after a crash".into())); }
                    Some(SlotCmd::Restart) => { backoff = spec.backoff.first; fast_crashes.clear(); }
                    None => {}
                },
            }
        }
        self.set(|s| {
            s.state = InstanceState::Stopped;
            s.pid = None;
        });
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
