//! `zklens serve`: the continuous service.
//!
//! ```text
//! discovery (ZooKeeper watches) ─┐
//! config (static sources,        ├─> manager ─> collectors (one thread per source: tail / HTTP)
//!         ensemble files)       ─┘                 │ bounded channel (backpressure)
//!                                                  v
//!                       txn-log follower ──> writer (the only IndexSink: add, commit with
//!                                                  │  every source's checkpoint atomically)
//!                                                  v after each commit
//!                                          live incident detector
//! HTTP API (axum) reads the committed index and the shared status.
//! ```
//!
//! Every piece reports into [`Shared`]; nothing reaches back up the flow. A crash at any point
//! loses nothing and duplicates nothing: events and the checkpoints they end at are committed
//! together, and collectors restart from the committed checkpoints.

pub mod api;
pub mod collect;
pub mod config;
pub mod policy;

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;

use crate::app as exec;
use crate::discovery::{DiscoveryEvent, EnsembleMember, Registration};
use crate::error::{Error, Result};
use crate::event::hex_id;
use crate::incident::Incident;
use crate::index::{Checkpoint, DataDir, IndexHandle, IndexSink};
use crate::parser::Registry;
use crate::source::tail::TailCheckpoint;
use crate::source::{self, Content};
use crate::time::rfc3339;
use crate::time::Tz;

use collect::{CollectorSpec, Msg};
use config::ServeConfig;
use policy::Target;

/// State of one source, for the API and metrics.
#[derive(Debug, Clone, Serialize)]
pub struct SourceStatus {
    /// Key (URL).
    pub url: String,
    /// Node its events get.
    pub node: String,
    /// `file`, `http` or `txnlog`.
    pub kind: String,
    /// `following`, `refused: ...`, `stopped: ...`.
    pub state: String,
    /// The registration znode it came from (None: configured).
    pub registration: Option<String>,
    /// Format in use.
    pub format: String,
    /// Events indexed (this process).
    pub events: u64,
    /// Bytes read (this process).
    pub bytes: u64,
    /// Offset handed to the index.
    pub offset: u64,
    /// Bytes written to the source and not indexed yet (files only).
    pub lag_bytes: Option<u64>,
    /// Last notices about it.
    pub notices: Vec<String>,
}

/// A registration as last seen.
#[derive(Debug, Clone, Serialize)]
pub struct RegistrationStatus {
    /// What it said.
    pub registration: Registration,
    /// `up` or `gone` (its events stay in the index).
    pub state: String,
    /// When it entered that state (RFC 3339).
    pub since: String,
}

/// An incident the live detector recognised.
#[derive(Debug, Clone, Serialize)]
pub struct LiveIncident {
    /// When zklens first recognised it (RFC 3339).
    pub detected_at: String,
    /// One-line summary (as `zklens incidents` prints it).
    pub summary: String,
    /// The post-mortem text (as `zklens incident ID` prints it).
    pub text: String,
    /// The incident as it stands now.
    pub incident: Incident,
    /// Its place in the last detection's list (the order `zklens incidents` prints).
    #[serde(skip)]
    pub rank: usize,
}

/// The ZooKeeper connection as discovery last reported it.
#[derive(Debug, Clone, Serialize)]
pub struct ZkStatus {
    /// `disabled`, `connecting`, `connected`, `disconnected`, `expired`.
    pub state: String,
    /// Current session (`0x` hex).
    pub session: Option<String>,
    /// Since (RFC 3339).
    pub since: String,
}

/// Everything the API shows.
#[derive(Debug, Serialize)]
pub struct Status {
    /// Sources by key.
    pub sources: BTreeMap<String, SourceStatus>,
    /// Registrations by znode.
    pub registrations: BTreeMap<String, RegistrationStatus>,
    /// Recent refusals (registrations or URLs not followed, and why).
    pub refusals: VecDeque<String>,
    /// ZooKeeper connection.
    pub zk: ZkStatus,
    /// Ensemble members, as discovered.
    pub ensemble: Vec<EnsembleMember>,
    /// Incidents recognised so far.
    pub incidents: BTreeMap<String, LiveIncident>,
    /// Last commit (RFC 3339).
    pub last_commit: Option<String>,
    #[serde(skip)]
    handed: BTreeMap<String, TailCheckpoint>,
    #[serde(skip)]
    txn_ranges: Vec<(u64, u64)>,
}

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Events indexed.
    pub events: AtomicU64,
    /// Bytes read.
    pub bytes: AtomicU64,
    /// Commits.
    pub commits: AtomicU64,
    /// Incidents recognised.
    pub incidents: AtomicU64,
    /// Batches waiting for the writer.
    pub queued: AtomicU64,
    /// How long the last incident detection took (µs).
    pub detect_us: AtomicU64,
}

/// State shared by the service's parts.
#[derive(Debug)]
pub struct Shared {
    /// Configuration.
    pub cfg: ServeConfig,
    /// Data directory.
    pub dir: DataDir,
    /// Formats.
    pub registry: Arc<Registry>,
    /// Status.
    pub status: Mutex<Status>,
    /// Counters.
    pub metrics: Metrics,
    /// Started at.
    pub started: Instant,
    /// The index as of the last commit, opened once for every request until the next commit
    /// (opening costs milliseconds: segment metadata, fast-column headers).
    index: Mutex<Option<Arc<IndexHandle>>>,
}

impl Shared {
    /// The status, even if a thread panicked while holding it.
    pub fn status(&self) -> MutexGuard<'_, Status> {
        self.status.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The index as of the last commit: opened on first use after a commit, then shared.
    pub fn index(&self) -> Result<Arc<IndexHandle>> {
        let mut held = self.index.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(h) = held.as_ref() {
            return Ok(Arc::clone(h));
        }
        let h = Arc::new(IndexHandle::open(&self.dir)?);
        *held = Some(Arc::clone(&h));
        Ok(h)
    }

    /// A commit happened: the next request opens the index anew (requests already running
    /// finish on the handle they hold).
    fn committed(&self) {
        *self.index.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }
}

fn now() -> String {
    let ns = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64);
    rfc3339(ns)
}

/// Logs a line for the operator (stderr, timestamped).
pub fn log(msg: &str) {
    eprintln!("{} zklens serve: {msg}", now());
}

fn note(list: &mut Vec<String>, msg: String) {
    list.push(msg);
    if list.len() > 5 {
        list.remove(0);
    }
}

/// A running collector.
struct Running {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<()>,
}

/// Starts and stops collectors as registrations come and go.
pub struct Manager {
    shared: Arc<Shared>,
    tx: Option<SyncSender<Msg>>,
    running: BTreeMap<String, Running>,
    /// Sources of each registration znode.
    by_znode: BTreeMap<String, Vec<String>>,
}

impl Manager {
    /// A manager sending to the writer through `tx`.
    pub fn new(shared: Arc<Shared>, tx: SyncSender<Msg>) -> Manager {
        Manager {
            shared,
            tx: Some(tx),
            running: BTreeMap::new(),
            by_znode: BTreeMap::new(),
        }
    }

    /// Starts following `url` for `node` (no-op when already followed). Configured sources
    /// (`registration` None) skip the security policy.
    pub fn follow(
        &mut self,
        url: &str,
        node: &str,
        format: Option<&str>,
        registration: Option<&str>,
    ) {
        if self.running.contains_key(url) {
            return;
        }
        let target = match registration {
            Some(_) => policy::check(url, &self.shared.cfg.security),
            None => policy::parse_url(url),
        };
        let mut st = SourceStatus {
            url: url.to_string(),
            node: node.to_string(),
            kind: "file".into(),
            state: "following".into(),
            registration: registration.map(str::to_string),
            format: format.unwrap_or_default().to_string(),
            events: 0,
            bytes: 0,
            offset: 0,
            lag_bytes: None,
            notices: Vec::new(),
        };
        let target = match target {
            Ok(t) => t,
            Err(reason) => {
                log(&reason);
                st.state = format!("refused: {reason}");
                let mut s = self.shared.status();
                s.refusals.push_back(format!("{} {reason}", now()));
                if s.refusals.len() > 200 {
                    s.refusals.pop_front();
                }
                s.sources.insert(url.to_string(), st);
                return;
            }
        };
        let forced = match format {
            Some(f) => match self.shared.registry.get(f) {
                Some(f) => Some(f),
                None => {
                    note(
                        &mut st.notices,
                        format!("unknown format {f:?}; detecting it from the content"),
                    );
                    None
                }
            },
            None => None,
        };
        let spec = CollectorSpec {
            key: url.to_string(),
            node: node.to_string(),
            format: forced,
            tz: Tz::Utc,
            poll: Duration::from_millis(self.shared.cfg.poll_ms.max(10)),
            flush: Duration::from_millis(self.shared.cfg.flush_ms),
            max_line: source::text::DEFAULT_MAX_LINE,
        };
        let resume = {
            let s = self.shared.status();
            s.handed.get(url).cloned()
        };
        let Some(tx) = self.tx.clone() else { return };
        let stop = Arc::new(AtomicBool::new(false));
        let registry = self.shared.registry.clone();
        let stop2 = stop.clone();
        let spawned = match target {
            Target::File(path) => {
                st.kind = "file".into();
                std::thread::Builder::new()
                    .name(format!("tail {node}"))
                    .spawn(move || collect::run_file(spec, path, resume, registry, tx, stop2))
            }
            Target::Http(u) => {
                st.kind = "http".into();
                std::thread::Builder::new()
                    .name(format!("http {node}"))
                    .spawn(move || collect::run_http(spec, u, resume, registry, tx, stop2))
            }
        };
        match spawned {
            Ok(handle) => {
                log(&format!("following {url} as {node}"));
                self.running
                    .insert(url.to_string(), Running { stop, handle });
            }
            Err(e) => st.state = format!("error: cannot start a collector: {e}"),
        }
        self.shared.status().sources.insert(url.to_string(), st);
    }

    /// Stops following `url` (its last lines are read first); its history stays indexed.
    pub fn unfollow(&mut self, url: &str, why: &str) {
        if let Some(r) = self.running.remove(url) {
            r.stop.store(true, Ordering::Relaxed);
            let _ = r.handle.join();
            log(&format!("stopped following {url}: {why}"));
        }
        if let Some(s) = self.shared.status().sources.get_mut(url) {
            if s.state == "following" {
                s.state = format!("stopped: {why} (history kept)");
            }
        }
    }

    /// Applies one discovery event.
    pub fn discovery(&mut self, ev: DiscoveryEvent) {
        let zk = |state: &str, session: Option<u64>| ZkStatus {
            state: state.into(),
            session: session.map(hex_id),
            since: now(),
        };
        match ev {
            DiscoveryEvent::Connected { session } => {
                log(&format!("ZooKeeper session {} connected", hex_id(session)));
                self.shared.status().zk = zk("connected", Some(session));
            }
            DiscoveryEvent::Disconnected => {
                log("ZooKeeper connection lost; reconnecting (sources keep being followed)");
                let mut st = self.shared.status();
                let session = st.zk.session.take();
                st.zk = zk("disconnected", None);
                st.zk.session = session;
            }
            DiscoveryEvent::Expired { session } => {
                log(&format!(
                    "ZooKeeper session {} expired; establishing a new one and re-listing registrations",
                    hex_id(session)
                ));
                self.shared.status().zk = zk("expired", Some(session));
            }
            DiscoveryEvent::Ensemble(members) => self.shared.status().ensemble = members,
            DiscoveryEvent::Registered(reg) => {
                let urls: Vec<String> = reg.logs.iter().map(|l| l.url.clone()).collect();
                // Sources the registration no longer names.
                let old = self.by_znode.remove(&reg.znode).unwrap_or_default();
                for u in old.iter().filter(|u| !urls.contains(u)) {
                    self.unfollow(u, "no longer in the registration");
                }
                log(&format!(
                    "registration {} ({} / {}): {} log(s)",
                    reg.znode,
                    reg.service,
                    reg.instance,
                    reg.logs.len()
                ));
                for l in &reg.logs {
                    self.follow(&l.url, &reg.instance, l.format.as_deref(), Some(&reg.znode));
                }
                self.by_znode.insert(reg.znode.clone(), urls);
                self.shared.status().registrations.insert(
                    reg.znode.clone(),
                    RegistrationStatus {
                        registration: reg,
                        state: "up".into(),
                        since: now(),
                    },
                );
            }
            DiscoveryEvent::Unregistered { znode } => {
                log(&format!("registration {znode} is gone"));
                for u in self.by_znode.remove(&znode).unwrap_or_default() {
                    self.unfollow(&u, "registration gone");
                }
                if let Some(r) = self.shared.status().registrations.get_mut(&znode) {
                    r.state = "gone".into();
                    r.since = now();
                }
            }
            DiscoveryEvent::Rejected { znode, reason } => {
                log(&format!("registration {znode} rejected: {reason}"));
                let mut s = self.shared.status();
                s.refusals
                    .push_back(format!("{} registration {znode}: {reason}", now()));
                if s.refusals.len() > 200 {
                    s.refusals.pop_front();
                }
            }
        }
    }

    /// Stops every collector (each reads what is left first) and lets the writer finish.
    pub fn shutdown(&mut self) {
        let keys: Vec<String> = self.running.keys().cloned().collect();
        for k in keys {
            self.unfollow(&k, "shutting down");
        }
        self.tx = None;
    }

    /// A sender for other producers (the txn-log follower).
    pub fn sender(&self) -> Option<SyncSender<Msg>> {
        self.tx.clone()
    }
}

/// The writer: the one owner of the index. Adds what collectors send and commits it with their
/// checkpoints every `commit_ms`; ends (with a final commit) when every sender is gone.
pub fn writer(
    shared: Arc<Shared>,
    mut sink: IndexSink,
    rx: Receiver<Msg>,
    committed: std::sync::mpsc::Sender<()>,
) -> Result<()> {
    let mut checkpoints: BTreeMap<String, Checkpoint> = sink
        .state()
        .sources
        .iter()
        .map(|c| (c.path.clone(), c.clone()))
        .collect();
    let mut ranges = sink.state().txn_ranges.clone();
    let every = Duration::from_millis(shared.cfg.commit_ms.max(50));
    let mut dirty = false;
    let mut last = Instant::now();
    let commit = |sink: &mut IndexSink,
                  checkpoints: &BTreeMap<String, Checkpoint>,
                  ranges: &Vec<(u64, u64)>|
     -> Result<()> {
        sink.commit(checkpoints.values().cloned().collect(), ranges.clone())?;
        shared.committed();
        shared.metrics.commits.fetch_add(1, Ordering::Relaxed);
        shared.status().last_commit = Some(now());
        let _ = committed.send(());
        Ok(())
    };
    loop {
        let msg = match rx.recv_timeout(every) {
            Ok(m) => Some(m),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => break,
        };
        match msg {
            Some(Msg::Batch {
                key,
                node,
                format,
                events,
                checkpoint,
                bytes,
            }) => {
                sink.add(&events)?;
                let n = events.len() as u64;
                shared.metrics.events.fetch_add(n, Ordering::Relaxed);
                shared.metrics.bytes.fetch_add(bytes, Ordering::Relaxed);
                let prev = checkpoints.get(&key).map_or(0, |c| c.events);
                checkpoints.insert(
                    key.clone(),
                    Checkpoint {
                        path: key.clone(),
                        fp: checkpoint.fp,
                        fp_len: checkpoint.fp_len,
                        offset: checkpoint.offset,
                        line: checkpoint.line,
                        node,
                        format: format.clone(),
                        events: prev + n,
                        file: checkpoint.id,
                    },
                );
                let mut s = shared.status();
                if let Some(st) = s.sources.get_mut(&key) {
                    st.events += n;
                    st.bytes += bytes;
                    st.offset = checkpoint.offset;
                    if !format.is_empty() {
                        st.format = format;
                    }
                }
                s.handed.insert(key, checkpoint);
                dirty = true;
            }
            Some(Msg::Txns { events, ranges: r }) => {
                sink.add(&events)?;
                shared
                    .metrics
                    .events
                    .fetch_add(events.len() as u64, Ordering::Relaxed);
                source::txn::merge_ranges(&mut ranges, &r);
                shared.status().txn_ranges = ranges.clone();
                dirty = true;
            }
            Some(Msg::Notice { key, message }) => {
                log(&message);
                if let Some(st) = shared.status().sources.get_mut(&key) {
                    note(&mut st.notices, format!("{} {message}", now()));
                }
            }
            None => {}
        }
        if dirty && last.elapsed() >= every {
            commit(&mut sink, &checkpoints, &ranges)?;
            dirty = false;
            last = Instant::now();
        }
    }
    if dirty {
        commit(&mut sink, &checkpoints, &ranges)?;
    }
    sink.close()
}

/// Follows the ensemble's transaction logs: re-reads them when they change and sends the
/// transactions not indexed yet.
pub fn txn_follower(shared: Arc<Shared>, tx: SyncSender<Msg>, stop: Arc<AtomicBool>) {
    let dirs: Vec<PathBuf> = shared
        .cfg
        .ensemble
        .server
        .iter()
        .filter_map(|s| s.data_dir.clone())
        .collect();
    if dirs.is_empty() {
        return;
    }
    let mut seen: Vec<(PathBuf, u64, Option<SystemTime>)> = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let (found, _) = source::discover(&dirs);
        let mut files: Vec<_> = found
            .into_iter()
            .filter(|f| matches!(f.content, Content::TxnLog { .. }))
            .collect();
        // Name the files after the servers the configuration gives them.
        for f in &mut files {
            if let Some(n) = server_node(&shared.cfg, &f.path) {
                f.node = n;
            }
        }
        snapshots(&shared, &dirs, &tx);
        let sig: Vec<(PathBuf, u64, Option<SystemTime>)> = files
            .iter()
            .map(|f| {
                let m = std::fs::metadata(&f.path).ok();
                (
                    f.path.clone(),
                    m.as_ref().map_or(0, |m| m.len()),
                    m.and_then(|m| m.modified().ok()),
                )
            })
            .collect();
        if sig != seen && !files.is_empty() {
            let known = shared.status().txn_ranges.clone();
            let mut events = Vec::new();
            match source::txn::read_txnlogs(&files, &known, &mut |e| {
                events.push(e);
                Ok(())
            }) {
                Ok(rep) => {
                    if !events.is_empty() {
                        // Hand the ranges over now so the next pass does not read them again.
                        {
                            let mut s = shared.status();
                            source::txn::merge_ranges(&mut s.txn_ranges, &rep.ranges);
                        }
                        if tx
                            .send(Msg::Txns {
                                events,
                                ranges: rep.ranges,
                            })
                            .is_err()
                        {
                            return;
                        }
                    }
                    seen = sig;
                }
                Err(e) => log(&format!("reading transaction logs: {e}")),
            }
        }
        let end = Instant::now() + Duration::from_millis(shared.cfg.poll_ms.max(500) * 4);
        while Instant::now() < end && !stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// The node of the configured server whose data directory holds `path`.
fn server_node(cfg: &ServeConfig, path: &std::path::Path) -> Option<String> {
    cfg.ensemble
        .server
        .iter()
        .find(|s| s.data_dir.as_ref().is_some_and(|d| path.starts_with(d)))
        .map(|s| s.node.clone())
}

/// Sends the sessions of each new snapshot (once it has been quiet for 2 s, so it is complete):
/// one `snapshot.session` event per session. A snapshot is indexed once, across restarts: its
/// checkpoint is its length.
fn snapshots(shared: &Shared, dirs: &[PathBuf], tx: &SyncSender<Msg>) {
    let (found, _) = source::discover(dirs);
    for mut f in found
        .into_iter()
        .filter(|f| matches!(f.content, Content::Snapshot { .. }))
    {
        let key = format!("file://{}", f.path.display());
        let Ok(meta) = std::fs::metadata(&f.path) else {
            continue;
        };
        let quiet = meta
            .modified()
            .ok()
            .and_then(|m| m.elapsed().ok())
            .is_some_and(|d| d >= Duration::from_secs(2));
        let done = shared
            .status()
            .handed
            .get(&key)
            .is_some_and(|c| c.offset == meta.len());
        if !quiet || done {
            continue;
        }
        if let Some(n) = server_node(&shared.cfg, &f.path) {
            f.node = n;
        }
        let mut events = Vec::new();
        let res = source::txn::read_snapshot(&f, &mut |e| {
            events.push(e);
            Ok(())
        });
        if let Err(e) = res {
            log(&format!("snapshot {}: {e}", f.path.display()));
        }
        let checkpoint = TailCheckpoint {
            path: f.path.clone(),
            id: None,
            fp: 0,
            fp_len: 0,
            offset: meta.len(),
            line: 0,
        };
        // Marked as handed at once: the next pass must not read it again.
        shared
            .status()
            .handed
            .insert(key.clone(), checkpoint.clone());
        let msg = Msg::Batch {
            key,
            node: f.node.clone(),
            format: "snapshot".into(),
            events,
            checkpoint,
            bytes: meta.len(),
        };
        if tx.send(msg).is_err() {
            return;
        }
    }
}

/// Detection reads the whole index (about 0.3 s per GB): after a run it rests this many times
/// as long as the run took, so on a large index it takes at most a quarter of one core however
/// often the writer commits, and on a small one it follows every commit within milliseconds.
const DETECT_REST: u32 = 3;

/// Re-detects incidents after each commit; logs and records the new ones.
pub fn detector(shared: Arc<Shared>, rx: Receiver<()>) {
    let mut rest_until = Instant::now();
    while rx.recv().is_ok() {
        std::thread::sleep(rest_until.saturating_duration_since(Instant::now()));
        while rx.try_recv().is_ok() {} // coalesce commits that piled up
        let started = Instant::now();
        detect_once(&shared);
        let took = started.elapsed();
        shared.metrics.detect_us.store(
            u64::try_from(took.as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        rest_until = Instant::now() + took * DETECT_REST;
    }
}

/// One detection over the index as last committed.
fn detect_once(shared: &Shared) {
    let idx = match shared.index() {
        Ok(idx) => idx,
        Err(e) => {
            log(&format!("incident detection: {e}"));
            return;
        }
    };
    let list = match exec::incidents(&idx, &shared.cfg.queries) {
        Ok(l) => l,
        Err(e) => {
            log(&format!("incident detection: {e}"));
            return;
        }
    };
    let skews = exec::skews(&idx).unwrap_or_default();
    let mut s = shared.status();
    for (rank, inc) in list.into_iter().enumerate() {
        let summary = crate::render::summary(&inc);
        let text = crate::render::text_with_skew(&inc, &skews);
        match s.incidents.get_mut(&inc.id) {
            Some(li) => {
                li.summary = summary;
                li.text = text;
                li.incident = inc;
                li.rank = rank;
            }
            None => {
                log(&format!("incident detected: {} ({summary})", inc.id));
                shared.metrics.incidents.fetch_add(1, Ordering::Relaxed);
                s.incidents.insert(
                    inc.id.clone(),
                    LiveIncident {
                        detected_at: now(),
                        summary,
                        text,
                        incident: inc,
                        rank,
                    },
                );
            }
        }
    }
}

/// Opens the index and builds the shared state (nothing runs yet).
pub fn prepare(
    cfg: ServeConfig,
    dir: DataDir,
    registry: Registry,
) -> Result<(Arc<Shared>, IndexSink)> {
    let sink = IndexSink::open(&dir, 2)?;
    let handed = sink
        .state()
        .sources
        .iter()
        .map(|c| {
            (
                c.path.clone(),
                TailCheckpoint {
                    path: c.path.clone().into(),
                    id: c.file,
                    fp: c.fp,
                    fp_len: c.fp_len,
                    offset: c.offset,
                    line: c.line,
                },
            )
        })
        .collect();
    let zk_state = if cfg.zookeeper.is_some() {
        "connecting"
    } else {
        "disabled"
    };
    let status = Status {
        sources: BTreeMap::new(),
        registrations: BTreeMap::new(),
        refusals: VecDeque::new(),
        zk: ZkStatus {
            state: zk_state.into(),
            session: None,
            since: now(),
        },
        ensemble: Vec::new(),
        incidents: BTreeMap::new(),
        last_commit: None,
        handed,
        txn_ranges: sink.state().txn_ranges.clone(),
    };
    Ok((
        Arc::new(Shared {
            cfg,
            dir,
            registry: Arc::new(registry),
            status: Mutex::new(status),
            metrics: Metrics::default(),
            started: Instant::now(),
            index: Mutex::new(None),
        }),
        sink,
    ))
}

/// Runs the service until SIGTERM / Ctrl-C: collectors, writer, detector, discovery and API.
pub fn run(cfg: ServeConfig, dir: DataDir, registry: Registry) -> Result<()> {
    let (shared, sink) = prepare(cfg, dir, registry)?;
    let (tx, rx) = std::sync::mpsc::sync_channel::<Msg>(shared.cfg.queue.max(1));
    let (ctx, crx) = std::sync::mpsc::channel::<()>();
    let w_shared = shared.clone();
    let writer_thread = std::thread::Builder::new()
        .name("index writer".into())
        .spawn(move || writer(w_shared, sink, rx, ctx))
        .map_err(|e| Error::Internal(format!("cannot start the writer: {e}")))?;
    let d_shared = shared.clone();
    std::thread::Builder::new()
        .name("incident detector".into())
        .spawn(move || detector(d_shared, crx))
        .map_err(|e| Error::Internal(format!("cannot start the detector: {e}")))?;
    let manager = Arc::new(Mutex::new(Manager::new(shared.clone(), tx)));
    // Configured sources: the ensemble's logs and hand-written ones.
    {
        let mut m = lock(&manager);
        for s in &shared.cfg.ensemble.server {
            for l in &s.logs {
                let url = format!("file://{}", l.display());
                m.follow(&url, &s.node, s.format.as_deref(), None);
            }
        }
        for s in &shared.cfg.sources {
            m.follow(&s.url, &s.node, s.format.as_deref(), None);
        }
    }
    let stop = Arc::new(AtomicBool::new(false));
    let txn_thread = lock(&manager).sender().and_then(|tx| {
        let (sh, st) = (shared.clone(), stop.clone());
        std::thread::Builder::new()
            .name("txn follower".into())
            .spawn(move || txn_follower(sh, tx, st))
            .ok()
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::Internal(format!("cannot start the runtime: {e}")))?;
    let served = rt.block_on(async {
        let (dtx, mut drx) = tokio::sync::mpsc::channel::<DiscoveryEvent>(256);
        let (stx, srx) = tokio::sync::watch::channel(false);
        if let Some(zk) = shared.cfg.zookeeper.clone() {
            let srx = srx.clone();
            tokio::spawn(async move {
                if let Err(e) = crate::discovery::watch::run(zk, dtx, srx).await {
                    log(&format!("ZooKeeper discovery stopped: {e}"));
                }
            });
        } else {
            drop(dtx);
        }
        let m2 = manager.clone();
        let apply = tokio::spawn(async move {
            while let Some(ev) = drx.recv().await {
                let m3 = m2.clone();
                // Starting/stopping collectors joins threads: off the async workers.
                let _ = tokio::task::spawn_blocking(move || lock(&m3).discovery(ev)).await;
            }
        });
        let listener = tokio::net::TcpListener::bind(shared.cfg.listen)
            .await
            .map_err(|source| Error::Listen {
                addr: shared.cfg.listen.to_string(),
                source,
            })?;
        log(&format!(
            "listening on http://{} (data dir {})",
            shared.cfg.listen,
            shared.dir.root().display()
        ));
        let app = api::router(shared.clone());
        let r = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown_signal())
            .await
            .map_err(|e| Error::Internal(format!("HTTP server: {e}")));
        log("shutting down: reading what is left and committing");
        let _ = stx.send(true);
        apply.abort();
        r
    });
    stop.store(true, Ordering::Relaxed);
    if let Some(t) = txn_thread {
        let _ = t.join();
    }
    lock(&manager).shutdown();
    drop(manager);
    rt.shutdown_timeout(Duration::from_secs(2));
    let w = writer_thread
        .join()
        .map_err(|_| Error::Internal("the index writer panicked".into()))?;
    w?;
    log("stopped; everything read is committed");
    served
}

fn lock(m: &Mutex<Manager>) -> MutexGuard<'_, Manager> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
