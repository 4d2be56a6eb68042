//! What the service is sent rather than reads: OTLP/HTTP logs (`POST /v1/logs`) from
//! `zklens agent`, Vector, Fluent Bit or the OpenTelemetry Collector.
//!
//! Each request's records are grouped by source ([`Record::source`]); each source is a
//! [`Pushed`] (lines assembled into events, the request's last entry ended with it, resends
//! dropped by offset or line number) whose batches go to the one writer like a collector's. A request is answered only after the commit that holds it
//! ([`Msg::Sync`]): a `200` means its events and its sources' checkpoints are on disk together.
//! A shipper that resends after a lost answer, or after either side was killed, finds its
//! records dropped as resends when it sends offsets (or line numbers).
//!
//! Each source's acknowledged checkpoint (`GET /api/checkpoints?source=KEY`) is where a
//! shipper resumes: `zklens agent` asks for it on every (re)connection. It is never ahead of
//! what is committed.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde::Serialize;

use crate::checkpoint::Checkpoint;
use crate::error::{Error, Result};
use crate::pipeline::service::{hand_over, Msg};
use crate::source::follow::FollowSpec;
use crate::source::otlp::{Limits, Pushed, Record};

use super::{log, now, Shared, SourceStatus};

/// What the API shows of a pushed source (in `/api/sources`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct PushedStatus {
    /// Records taken.
    pub records: u64,
    /// Records dropped as resends.
    pub duplicates: u64,
    /// Requests that sent it records.
    pub requests: u64,
    /// When it last sent records (RFC 3339).
    pub last_push: String,
    /// The acknowledged checkpoint's offset: what a shipper resumes from.
    pub acknowledged: u64,
}

/// One pushed source.
#[derive(Debug)]
struct Slot {
    pushed: Pushed,
    /// The checkpoint of the last batch known committed.
    acked: Checkpoint,
    /// Pushes taken, and the number of the one `acked` came from.
    pushes: u64,
    acked_push: u64,
}

/// Counters of `/metrics`.
#[derive(Debug, Default)]
pub struct IntakeMetrics {
    /// `POST /v1/logs` requests answered 200.
    pub requests: AtomicU64,
    /// Records taken.
    pub records: AtomicU64,
    /// Records dropped as resends.
    pub duplicates: AtomicU64,
    /// Requests refused (bad body, too large, no token, unknown content type).
    pub refused: AtomicU64,
}

/// The pushed sources and the way to the writer.
#[derive(Debug, Default)]
pub struct Intake {
    slots: Mutex<BTreeMap<String, Arc<Mutex<Slot>>>>,
    tx: Mutex<Option<SyncSender<Msg>>>,
    /// Limits of one request.
    pub limits: Limits,
    /// Counters.
    pub metrics: IntakeMetrics,
}

/// What one request did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Received {
    /// Records taken.
    pub accepted: u64,
    /// Records dropped as resends.
    pub duplicates: u64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn writer_gone() -> Error {
    Error::Budget("the index writer is not running (starting or stopping): retry".into())
}

impl Intake {
    /// An intake refusing requests until [`open`](Intake::open).
    pub fn new(limits: Limits) -> Intake {
        Intake {
            limits,
            ..Intake::default()
        }
    }

    /// Starts taking requests: batches go to the writer through `tx`.
    pub fn open(&self, tx: SyncSender<Msg>) {
        *lock(&self.tx) = Some(tx);
    }

    /// Stops taking requests: the writer's sender is dropped (the writer ends once every
    /// sender is gone). Nothing is held: every request's entries were ended with it.
    pub fn close(&self) {
        lock(&self.tx).take();
    }

    fn sender(&self) -> Result<SyncSender<Msg>> {
        lock(&self.tx).clone().ok_or_else(writer_gone)
    }

    /// The slot of `key`, made from the first of its records when new.
    fn slot(&self, shared: &Shared, key: &str, first: &Record) -> Result<Arc<Mutex<Slot>>> {
        let mut slots = lock(&self.slots);
        if let Some(s) = slots.get(key) {
            return Ok(s.clone());
        }
        let max = shared.cfg.security.max_sources;
        if slots.len() >= max {
            return Err(Error::BadRequest {
                what: "POST /v1/logs".into(),
                offset: 0,
                reason: format!(
                    "source {key:?} refused: {max} pushed sources are taken already (security.max_sources, --max-sources)"
                ),
            });
        }
        let mut notices = Vec::new();
        let format = match first.format.as_deref() {
            Some(f) => match shared.registry.resolve(f) {
                Ok(f) => Some(f),
                Err(e) => {
                    notices.push(format!("{e}; detecting the format from the content"));
                    None
                }
            },
            None => None,
        };
        let tz = shared.cfg.zone_for(&first.node, None).unwrap_or_else(|e| {
            notices.push(format!("{e}; reading its timestamps as UTC"));
            crate::time::Tz::Utc
        });
        let ensemble = first
            .ensemble
            .clone()
            .unwrap_or_else(|| shared.cfg.ensemble.name().to_string());
        let spec = FollowSpec {
            key: key.to_string(),
            node: first.node.clone(),
            ensemble: Arc::from(ensemble.as_str()),
            format,
            tz,
            flush: Duration::ZERO, // each request's entries end with it
            max_line: crate::source::text::DEFAULT_MAX_LINE,
        };
        let resume = shared.committed_at_start.get(key).cloned();
        let pushed = Pushed::new(spec, shared.registry.clone(), resume);
        let acked = pushed.checkpoint().clone();
        log(&format!(
            "receiving {key} as {} (OTLP/HTTP, from offset {})",
            first.node, acked.offset
        ));
        shared.status().sources.insert(
            key.to_string(),
            SourceStatus {
                url: key.to_string(),
                node: first.node.clone(),
                kind: "otlp".into(),
                state: "receiving".into(),
                registration: None,
                format: first.format.clone().unwrap_or_default(),
                events: 0,
                bytes: 0,
                offset: acked.offset,
                lag_bytes: None,
                coverage: acked.coverage,
                notices,
                pushed: Some(PushedStatus {
                    acknowledged: acked.offset,
                    ..PushedStatus::default()
                }),
                agent: None,
            },
        );
        let slot = Arc::new(Mutex::new(Slot {
            pushed,
            acked,
            pushes: 0,
            acked_push: 0,
        }));
        slots.insert(key.to_string(), slot.clone());
        Ok(slot)
    }

    /// Takes one request's records: each source's batch goes to the writer, and the call
    /// returns once a commit holds them all (blocking: call it off the async workers).
    pub fn receive(&self, shared: &Shared, records: Vec<Record>) -> Result<Received> {
        let tx = self.sender()?;
        let mut groups: BTreeMap<String, Vec<Record>> = BTreeMap::new();
        for r in records {
            groups.entry(r.source.clone()).or_default().push(r);
        }
        // zklens's agents send every byte in order: a request past a gap means this service
        // lost what it had acknowledged (its data was restored or wiped). Nothing of it is
        // taken: the agent reads again from the checkpoint (`GET /api/checkpoints`).
        for (key, recs) in groups.iter().filter(|(k, _)| k.starts_with("agent://")) {
            let Some(first) = recs.first() else { continue };
            let slot = self.slot(shared, key, first)?;
            let gap = lock(&slot).pushed.gap(recs);
            if let Some((want, got)) = gap {
                self.metrics.refused.fetch_add(1, Ordering::Relaxed);
                return Err(Error::Conflict(format!(
                    "{key}: this service holds it up to offset {want}, the request starts at {got}: send from {want} (GET /api/checkpoints?source=)"
                )));
            }
        }
        let mut got = Received::default();
        let mut done = Vec::new();
        for (key, recs) in groups {
            let Some(first) = recs.first() else { continue };
            let slot = self.slot(shared, &key, first)?;
            let mut s = lock(&slot);
            let pushing = s.pushed.push(&recs);
            got.accepted += pushing.accepted;
            got.duplicates += pushing.duplicates;
            if let Some(b) = pushing.batch {
                hand_over(&tx, &key, b).map_err(|_| writer_gone())?;
            }
            let cp = s.pushed.checkpoint().clone();
            s.pushes += 1;
            let n = s.pushes;
            drop(s);
            let mut st = shared.status();
            if let Some(p) = st.sources.get_mut(&key).and_then(|s| s.pushed.as_mut()) {
                p.records += pushing.accepted;
                p.duplicates += pushing.duplicates;
                p.requests += 1;
                p.last_push = now();
            }
            drop(st);
            done.push((slot, key, cp, n));
        }
        sync(&tx)?;
        for (slot, key, cp, n) in done {
            let mut s = lock(&slot);
            // A later request may have acknowledged a later position meanwhile.
            if n > s.acked_push {
                (s.acked, s.acked_push) = (cp, n);
            }
            let at = s.acked.offset;
            drop(s);
            if let Some(p) = shared
                .status()
                .sources
                .get_mut(&key)
                .and_then(|s| s.pushed.as_mut())
            {
                p.acknowledged = at;
            }
        }
        self.metrics.requests.fetch_add(1, Ordering::Relaxed);
        self.metrics
            .records
            .fetch_add(got.accepted, Ordering::Relaxed);
        self.metrics
            .duplicates
            .fetch_add(got.duplicates, Ordering::Relaxed);
        Ok(got)
    }

    /// The acknowledged checkpoint of `key`: the committed one for a source not pushed to
    /// since the start (None: never committed).
    pub fn checkpoint(&self, shared: &Shared, key: &str) -> Option<Checkpoint> {
        if let Some(slot) = lock(&self.slots).get(key) {
            return Some(lock(slot).acked.clone());
        }
        shared.committed_at_start.get(key).cloned()
    }

    /// Every pushed source's acknowledged checkpoint (those of this run, and those committed
    /// before it).
    pub fn checkpoints(&self, shared: &Shared) -> Vec<Checkpoint> {
        let mut all: BTreeMap<String, Checkpoint> = BTreeMap::new();
        for (k, slot) in lock(&self.slots).iter() {
            all.insert(k.clone(), lock(slot).acked.clone());
        }
        for c in &shared.committed_at_start.sources {
            if pushed_key(&c.path) {
                all.entry(c.path.clone()).or_insert_with(|| c.clone());
            }
        }
        all.into_values().collect()
    }
}

/// A key that only a pushed source has (`agent://…`, `otlp://…`).
pub fn pushed_key(key: &str) -> bool {
    key.starts_with("agent://") || key.starts_with("otlp://")
}

/// Waits for a commit holding everything sent so far.
fn sync(tx: &SyncSender<Msg>) -> Result<()> {
    let (atx, arx) = std::sync::mpsc::channel();
    tx.send(Msg::Sync(atx)).map_err(|_| writer_gone())?;
    match arx.recv() {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(Error::Internal(format!("the commit failed: {e}"))),
        Err(_) => Err(writer_gone()),
    }
}
