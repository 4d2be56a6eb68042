//! `[export.otlp]`: every incident the live detector recognises, sent as an OTLP trace
//! ([`crate::app::trace::incident`]) with the traces of the sessions it expired or moved, to an
//! OTLP/HTTP endpoint.
//!
//! The detector hands incidents over with `try_send` on a bounded queue: a slow or dead endpoint
//! never holds detection, let alone indexing (an incident that does not fit is dropped and
//! counted). This thread waits until an incident has stayed unchanged for `settle_ms` (a
//! failover's steps arrive over seconds), sends it, and sends it again if it changes later
//! (trace and span ids are derived, so a receiver sees the same ids). A failed send is retried
//! with a growing wait, then given up and counted.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::app::{self, trace, Filter};
use crate::event::fnv1a;
use crate::incident::Incident;

use super::config::OtlpExport;
use super::{log, Shared};

/// Incidents waiting for the exporter, at most.
pub const QUEUE: usize = 256;

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub struct ExportMetrics {
    /// Traces sent (incidents and sessions).
    pub traces: AtomicU64,
    /// Spans sent.
    pub spans: AtomicU64,
    /// Traces given up after every attempt failed.
    pub failed: AtomicU64,
    /// Incidents dropped because the queue was full.
    pub dropped: AtomicU64,
}

/// Runs until every sender of `rx` is gone.
pub fn run(shared: Arc<Shared>, cfg: OtlpExport, rx: Receiver<Incident>) {
    let settle = Duration::from_millis(cfg.settle_ms);
    // Incidents waiting to settle: the incident, when it last changed, its fingerprint.
    let mut pending: BTreeMap<String, (Incident, Instant, u64)> = BTreeMap::new();
    // The fingerprint of what was sent of each incident.
    let mut sent: BTreeMap<String, u64> = BTreeMap::new();
    loop {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(inc) => {
                let fp = fnv1a(&serde_json::to_vec(&inc).unwrap_or_default());
                if sent.get(&inc.id) == Some(&fp) {
                    continue;
                }
                match pending.get_mut(&inc.id) {
                    Some(p) if p.2 == fp => {}
                    _ => {
                        pending.insert(inc.id.clone(), (inc, Instant::now(), fp));
                    }
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                // Shutting down: what has settled goes; the rest is not waited for.
                let ready: Vec<String> = pending.keys().cloned().collect();
                for id in ready {
                    if let Some((inc, _, fp)) = pending.remove(&id) {
                        export(&shared, &cfg, &inc, 1);
                        sent.insert(id, fp);
                    }
                }
                return;
            }
        }
        let ready: Vec<String> = pending
            .iter()
            .filter(|(_, p)| p.1.elapsed() >= settle)
            .map(|(id, _)| id.clone())
            .collect();
        for id in ready {
            if let Some((inc, _, fp)) = pending.remove(&id) {
                export(&shared, &cfg, &inc, cfg.attempts);
                sent.insert(id, fp);
            }
        }
    }
}

/// Sends an incident's trace, then its sessions' (each with up to `attempts` tries).
fn export(shared: &Shared, cfg: &OtlpExport, inc: &Incident, attempts: u32) {
    let mut traces = vec![(inc.id.clone(), trace::incident(inc))];
    if let Ok(idx) = shared.index() {
        let all = Filter::default();
        for sid in trace::linked_sessions(inc)
            .into_iter()
            .take(cfg.max_sessions)
        {
            match app::session(&idx, sid, &all) {
                Ok(ans) if !ans.found.events.is_empty() => traces.push((
                    format!("session {}", ans.session),
                    trace::session(sid, &ans.found.events),
                )),
                Ok(_) => {}
                Err(e) => log(&format!("export: session {sid:#x}: {e}")),
            }
        }
    }
    let m = &shared.export_metrics;
    for (what, req) in traces {
        let mut wait = Duration::from_millis(500);
        let mut tries = 0;
        loop {
            tries += 1;
            match trace::send(&cfg.endpoint, &req, Duration::from_secs(10)) {
                Ok(()) => {
                    m.traces.fetch_add(1, Ordering::Relaxed);
                    m.spans
                        .fetch_add(trace::span_count(&req) as u64, Ordering::Relaxed);
                    break;
                }
                Err(e) if tries >= attempts => {
                    m.failed.fetch_add(1, Ordering::Relaxed);
                    log(&format!(
                        "export: {what}'s trace given up after {tries} attempt(s): {e}"
                    ));
                    break;
                }
                Err(_) => {
                    std::thread::sleep(wait);
                    wait = (wait * 2).min(Duration::from_secs(8));
                }
            }
        }
    }
}
