//! `zklens serve`: the continuous service.
//!
//! ```text
//! discovery (ZooKeeper watches) ─┐
//! config (static sources,        ├─> manager ─> collectors (one thread per Source: FileTail /
//!         ensemble files)       ─┘                 │  HttpRange; TxnLogFollower, SnapshotWatcher)
//!                                                  │ bounded channel (backpressure)
//!                                                  v
//!                    pipeline::service::write: the one Sink = Tee(IndexSink, LiveSink)
//!                    (batches with their checkpoint deltas; commit atomically)
//!                                                  v after each commit (LiveSink)
//!                                          live incident detector
//! HTTP API (axum) reads the committed index and the shared status.
//! ```
//!
//! The sources live in [`crate::source`], the collector loop and the writer in
//! [`crate::pipeline::service`]; this module starts them, keeps the status and serves the API.
//! Every piece reports into [`Shared`]; nothing reaches back up the flow. A crash at any point
//! loses nothing and duplicates nothing: events and the checkpoints they end at are committed
//! together, and collectors restart from the committed checkpoints.

pub mod api;
pub mod config;
pub mod export;
pub mod intake;
#[cfg(feature = "lake")]
pub mod lake;

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;

use crate::app;
use crate::checkpoint::{Checkpoints, Coverage};
use crate::discovery::agents::AgentInfo;
use crate::discovery::host::HostNames;
use crate::discovery::{DiscoveryEvent, EnsembleMember, Registration};
use crate::error::{Error, Result};
use crate::event::hex_id;
use crate::incident::Incident;
use crate::index::{DataDir, IndexHandle, IndexSink};
use crate::parser::Registry;
use crate::pipeline::service::{self as driver, Handed, Msg};
use crate::sink::{Batch, Sink, Tee};
use crate::source::follow::{FileTail, FollowSpec, HttpRange};
use crate::source::txnwatch::{DataDirs, SnapshotWatcher, TxnLogFollower};
use crate::source::{self, Source};
use crate::time::rfc3339;

use crate::source::policy::{self, Target};
use config::ServeConfig;

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
    /// How much of its entries was understood: entries, timestamped, classified beyond `log`
    /// (counted over everything indexed from it, across restarts; text sources only).
    pub coverage: Option<Coverage>,
    /// Last notices about it.
    pub notices: Vec<String>,
    /// What it was sent (`otlp` sources: pushed to `POST /v1/logs`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pushed: Option<intake::PushedStatus>,
    /// The agent shipping it (`agent://HOST/...` sources), as the API finds it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
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
    /// The agents registered under `/zklens/agents` (`zklens agent`), as last listed.
    pub agents: Vec<AgentInfo>,
    /// Last commit (RFC 3339).
    pub last_commit: Option<String>,
}

/// Who ships what: each agent with the registrations naming its host and the sources it
/// pushed, and the registrations whose `file://` logs are on a host no agent covers (nobody
/// reads them).
#[derive(Debug, Clone, Serialize)]
pub struct AgentsCoverage {
    /// The agents, each with what it covers.
    pub agents: Vec<AgentCoverage>,
    /// Registrations (up) whose files are on another host that no agent covers.
    pub uncovered: Vec<Uncovered>,
}

/// One agent and what it covers.
#[derive(Debug, Clone, Serialize)]
pub struct AgentCoverage {
    /// What its znode says.
    #[serde(flatten)]
    pub agent: AgentInfo,
    /// Registration znodes naming its host.
    pub registrations: Vec<String>,
    /// Sources it pushed (`agent://HOST/...`).
    pub sources: Vec<String>,
}

/// A registration nobody reads.
#[derive(Debug, Clone, Serialize)]
pub struct Uncovered {
    /// Its znode.
    pub znode: String,
    /// Its instance.
    pub instance: String,
    /// The host it names.
    pub host: String,
    /// Its `file://` logs.
    pub logs: Vec<String>,
}

impl Status {
    /// Who ships what (`/api/agents`).
    pub fn coverage(&self, local: &HostNames) -> AgentsCoverage {
        let up = || self.registrations.values().filter(|r| r.state == "up");
        let agents = self
            .agents
            .iter()
            .map(|a| AgentCoverage {
                agent: a.clone(),
                registrations: up()
                    .filter(|r| r.registration.host.as_deref().is_some_and(|h| a.covers(h)))
                    .map(|r| r.registration.znode.clone())
                    .collect(),
                sources: self
                    .sources
                    .keys()
                    .filter(|k| agent_of(k) == Some(a.host.as_str()))
                    .cloned()
                    .collect(),
            })
            .collect();
        let uncovered = up()
            .filter_map(|r| {
                let reg = &r.registration;
                let host = reg.host.as_deref()?;
                let files: Vec<String> = reg
                    .logs
                    .iter()
                    .filter(|l| l.url.starts_with("file://"))
                    .map(|l| l.url.clone())
                    .collect();
                let covered = local.matches(host) || self.agents.iter().any(|a| a.covers(host));
                (!covered && !files.is_empty()).then(|| Uncovered {
                    znode: reg.znode.clone(),
                    instance: reg.instance.clone(),
                    host: host.to_string(),
                    logs: files,
                })
            })
            .collect();
        AgentsCoverage { agents, uncovered }
    }

    /// The registration an agent's source belongs to: one naming the agent's host whose
    /// `file://` log is the source's path.
    pub fn registration_of_pushed(&self, key: &str) -> Option<String> {
        let host = agent_of(key)?;
        let path = &key["agent://".len() + host.len()..];
        let agent = self.agents.iter().find(|a| a.host == host);
        self.registrations
            .values()
            .filter(|r| {
                r.registration
                    .host
                    .as_deref()
                    .is_some_and(|h| agent.map_or(h.eq_ignore_ascii_case(host), |a| a.covers(h)))
            })
            .find(|r| {
                r.registration
                    .logs
                    .iter()
                    .any(|l| l.url.strip_prefix("file://") == Some(path))
            })
            .map(|r| r.registration.znode.clone())
    }
}

/// The agent host of a source key `agent://HOST/path`.
pub fn agent_of(key: &str) -> Option<&str> {
    let rest = key.strip_prefix("agent://")?;
    rest.split('/').next().filter(|h| !h.is_empty())
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
    /// Where every source stands as handed to the writer (collectors resume there).
    handed: Handed,
    /// The checkpoints committed when the service started.
    committed_at_start: Checkpoints,
    /// The index as of the last commit, opened once for every request until the next commit
    /// (opening costs milliseconds: segment metadata, fast-column headers).
    index: Mutex<Option<Arc<IndexHandle>>>,
    /// Permits of the API's requests that read the index (`max_requests`): one is held until
    /// the request's work has stopped, even when its answer was given up.
    pub(crate) requests: Arc<tokio::sync::Semaphore>,
    /// Sources pushed to `POST /v1/logs`.
    pub intake: intake::Intake,
    /// This machine's names: a registration's `file://` logs are read here only when its
    /// `host` is one of them (or it names none); others are its host's agent's.
    pub local: HostNames,
    /// Where detected incidents go to be exported as traces (`[export.otlp]`), when set.
    exporter: Mutex<Option<SyncSender<Incident>>>,
    /// Counters of the trace export.
    pub export_metrics: export::ExportMetrics,
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

    /// Hands an incident new or changed to the trace exporter, if there is one; never waits
    /// (a full queue drops it, counted).
    fn export(&self, inc: &Incident) {
        let held = self.exporter.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(tx) = held.as_ref() {
            if tx.try_send(inc.clone()).is_err() {
                self.export_metrics.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
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
    /// What it reads ([`policy::identity`]): no second collector reads the same.
    identity: String,
    /// Started for a registration (counted against `security.max_sources`).
    discovered: bool,
}

/// Starts and stops collectors as registrations come and go.
pub struct Manager {
    shared: Arc<Shared>,
    tx: Option<SyncSender<Msg>>,
    running: BTreeMap<String, Running>,
    /// Sources of each registration znode.
    by_znode: BTreeMap<String, Vec<String>>,
    /// The key of the collector reading each identity ([`policy::identity`]).
    identities: BTreeMap<String, String>,
}

impl Manager {
    /// A manager sending to the writer through `tx`.
    pub fn new(shared: Arc<Shared>, tx: SyncSender<Msg>) -> Manager {
        Manager {
            shared,
            tx: Some(tx),
            running: BTreeMap::new(),
            by_znode: BTreeMap::new(),
            identities: BTreeMap::new(),
        }
    }

    /// Starts following `url` for `node` (no-op when already followed). Configured sources
    /// (`registration` None) skip the security policy. `tz` is the source's own zone (else the
    /// node's, else the configuration's default).
    pub fn follow(
        &mut self,
        url: &str,
        node: &str,
        format: Option<&str>,
        tz: Option<&str>,
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
            coverage: None,
            notices: Vec::new(),
            pushed: None,
            agent: None,
        };
        // One collector per file or URL however it is spelled, and at most
        // `security.max_sources` for registrations: what goes over is refused and reported.
        let target = target.and_then(|t| {
            let identity = policy::identity(&t);
            if let Some(other) = self.identities.get(&identity) {
                return Err(format!(
                    "{url}: refused: the same source as {other} (one collector per file or URL, however it is spelled)"
                ));
            }
            let max = self.shared.cfg.security.max_sources;
            if registration.is_some()
                && self.running.values().filter(|r| r.discovered).count() >= max
            {
                return Err(format!(
                    "{url}: refused: {max} discovered sources are followed already (security.max_sources, --max-sources)"
                ));
            }
            Ok((t, identity))
        });
        let (target, identity) = match target {
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
            Some(f) => match self.shared.registry.resolve(f) {
                Ok(f) => Some(f),
                Err(e) => {
                    note(
                        &mut st.notices,
                        format!("{e}; detecting the format from the content"),
                    );
                    None
                }
            },
            None => None,
        };
        let tz = match self.shared.cfg.zone_for(node, tz) {
            Ok(z) => z,
            Err(e) => {
                // Configured zones were checked at start; a bad one here is a discovered node's.
                note(
                    &mut st.notices,
                    format!("{e}; reading its timestamps as UTC"),
                );
                crate::time::Tz::Utc
            }
        };
        let spec = FollowSpec {
            key: url.to_string(),
            node: node.to_string(),
            ensemble: Arc::from(self.shared.cfg.ensemble.name()),
            format: forced,
            tz,
            flush: Duration::from_millis(self.shared.cfg.flush_ms),
            max_line: source::text::DEFAULT_MAX_LINE,
        };
        let poll = Duration::from_millis(self.shared.cfg.poll_ms.max(10));
        let resume = self
            .shared
            .handed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(url)
            .cloned();
        let Some(tx) = self.tx.clone() else { return };
        let stop = Arc::new(AtomicBool::new(false));
        let registry = self.shared.registry.clone();
        let stop2 = stop.clone();
        let handed = self.shared.handed.clone();
        let (name, mut src): (String, Box<dyn Source>) = match target {
            Target::File { path, root } => {
                st.kind = "file".into();
                let mut s = FileTail::new(spec, path, resume, registry);
                if let Some(root) = root {
                    s = s.beneath(root);
                }
                (format!("tail {node}"), Box::new(s))
            }
            Target::Http { url: u, pinned } => {
                st.kind = "http".into();
                let mut s = HttpRange::new(spec, u, resume, registry);
                if let Some(addrs) = pinned {
                    s = s.pinned_to(addrs);
                }
                (format!("http {node}"), Box::new(s))
            }
        };
        let spawned = std::thread::Builder::new()
            .name(name)
            .spawn(move || driver::collect(src.as_mut(), &tx, &stop2, poll, &handed));
        match spawned {
            Ok(handle) => {
                log(&format!("following {url} as {node}"));
                self.identities.insert(identity.clone(), url.to_string());
                self.running.insert(
                    url.to_string(),
                    Running {
                        stop,
                        handle,
                        identity,
                        discovered: registration.is_some(),
                    },
                );
            }
            Err(e) => st.state = format!("error: cannot start a collector: {e}"),
        }
        self.shared.status().sources.insert(url.to_string(), st);
    }

    /// Stops following `url` (its last lines are read first); its history stays indexed.
    pub fn unfollow(&mut self, url: &str, why: &str) {
        if let Some(r) = self.running.remove(url) {
            self.identities.remove(&r.identity);
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
                // Another host's files are its agent's (`/api/agents` says whether one ships
                // them): the file of that name here is another file.
                let elsewhere = reg
                    .host
                    .as_deref()
                    .filter(|h| !self.shared.local.matches(h));
                let here = |url: &str| elsewhere.is_none() || !url.starts_with("file://");
                let urls: Vec<String> = reg
                    .logs
                    .iter()
                    .map(|l| l.url.clone())
                    .filter(|u| here(u))
                    .collect();
                // Sources the registration no longer names (or no longer places here).
                let old = self.by_znode.remove(&reg.znode).unwrap_or_default();
                for u in old.iter().filter(|u| !urls.contains(u)) {
                    self.unfollow(u, "no longer in the registration, or on another host");
                }
                log(&format!(
                    "registration {} ({} / {}): {} log(s){}",
                    reg.znode,
                    reg.service,
                    reg.instance,
                    reg.logs.len(),
                    match elsewhere {
                        Some(h) => format!(", on host {h}: its files are left to its agent"),
                        None => String::new(),
                    }
                ));
                for l in reg.logs.iter().filter(|l| here(&l.url)) {
                    let format = l.format.as_deref();
                    self.follow(&l.url, &reg.instance, format, None, Some(&reg.znode));
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

/// The service's live state as a sink: told of every batch the index took (status and
/// metrics per source) and of every commit (the index handle is renewed, and the live incident
/// detector runs again).
#[derive(Debug)]
pub struct LiveSink {
    shared: Arc<Shared>,
    committed: std::sync::mpsc::Sender<i64>,
    checkpoints: Checkpoints,
    /// The earliest time among the events sent since the last commit (`i64::MAX`: none).
    earliest: i64,
}

impl LiveSink {
    /// A sink updating `shared` and telling the detector through `committed` after each
    /// commit the earliest time among the events it committed (`i64::MAX`: none had a time).
    pub fn new(shared: Arc<Shared>, committed: std::sync::mpsc::Sender<i64>) -> LiveSink {
        LiveSink {
            shared,
            committed,
            checkpoints: Checkpoints::default(),
            earliest: i64::MAX,
        }
    }
}

impl Sink for LiveSink {
    fn send(&mut self, batch: &Batch) -> Result<()> {
        let n = batch.events.len() as u64;
        if let Some(t) = batch.events.iter().filter_map(|e| e.ts).min() {
            self.earliest = self.earliest.min(t);
        }
        let m = &self.shared.metrics;
        m.events.fetch_add(n, Ordering::Relaxed);
        if let Some(d) = &batch.delta {
            m.bytes.fetch_add(batch.bytes, Ordering::Relaxed);
            let mut s = self.shared.status();
            if let Some(st) = s.sources.get_mut(d.key()) {
                st.events += n;
                st.bytes += batch.bytes;
                st.offset = d.to.offset;
                if d.to.coverage.is_some() {
                    st.coverage = d.to.coverage;
                }
                if !d.to.format.is_empty() {
                    st.format = d.to.format.clone();
                }
            }
            drop(s);
            self.checkpoints.set(d.to.clone());
        }
        self.checkpoints
            .add_txn_ranges_in(batch.txn_ensemble(), &batch.txn_ranges);
        Ok(())
    }

    fn commit(&mut self) -> Result<()> {
        self.shared.committed();
        self.shared.metrics.commits.fetch_add(1, Ordering::Relaxed);
        self.shared.status().last_commit = Some(now());
        let _ = self
            .committed
            .send(std::mem::replace(&mut self.earliest, i64::MAX));
        Ok(())
    }

    fn checkpoints(&self) -> &Checkpoints {
        &self.checkpoints
    }
}

/// The writer: the one owner of the index (through [`driver::write`]); ends with a final
/// commit when every sender is gone.
pub fn writer(
    shared: Arc<Shared>,
    sink: IndexSink,
    rx: Receiver<Msg>,
    committed: std::sync::mpsc::Sender<i64>,
) -> Result<()> {
    let every = Duration::from_millis(shared.cfg.commit_ms.max(50));
    let mut tee = Tee {
        first: sink,
        second: LiveSink::new(shared.clone(), committed),
    };
    driver::write(&mut tee, &rx, every, &mut |key, message| {
        log(message);
        if let Some(st) = shared.status().sources.get_mut(key) {
            note(&mut st.notices, format!("{} {message}", now()));
        }
    })?;
    tee.first.close()
}

/// The data directories of the configured servers, with their nodes.
fn data_dirs(cfg: &ServeConfig) -> DataDirs {
    cfg.ensemble
        .server
        .iter()
        .filter_map(|s| s.data_dir.clone().map(|d| (d, s.node.clone())))
        .collect()
}

/// Starts a collector thread for a source of the ensemble's data directories.
fn spawn_collector(
    shared: &Arc<Shared>,
    name: &str,
    mut src: Box<dyn Source>,
    tx: SyncSender<Msg>,
    stop: Arc<AtomicBool>,
) -> Option<JoinHandle<()>> {
    let poll = Duration::from_millis(shared.cfg.poll_ms);
    let handed = shared.handed.clone();
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || driver::collect(src.as_mut(), &tx, &stop, poll, &handed))
        .ok()
}

/// After a detection, the detector rests this many times as long as it took, so it takes at
/// most a quarter of one core however often the writer commits (the first detection reads the
/// whole index, about 0.3 s per GB; the later ones only what is new).
const DETECT_REST: u32 = 3;

/// Detects incidents after each commit; logs and records the new ones. The first detection
/// reads the whole index; each later one reads from the earliest event committed since the
/// one before ([`app::incidents_since`]), so its cost follows the new data, not the index.
pub fn detector(shared: Arc<Shared>, rx: Receiver<i64>) {
    let mut rest_until = Instant::now();
    let mut first = true;
    while let Ok(t) = rx.recv() {
        std::thread::sleep(rest_until.saturating_duration_since(Instant::now()));
        // Commits that piled up while resting: detection starts at the earliest of them.
        let from = rx.try_iter().fold(t, i64::min);
        if !first && from == i64::MAX {
            continue; // nothing timed was committed: no incident can have changed
        }
        let started = Instant::now();
        if detect_once(&shared, (!first).then_some(from)) {
            first = false;
        }
        let took = started.elapsed();
        shared.metrics.detect_us.store(
            u64::try_from(took.as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        rest_until = Instant::now() + took * DETECT_REST;
    }
}

/// One detection over the index as last committed: over all of it, or over what events from
/// `from` on may have changed. False when it could not run (it is then retried in full).
fn detect_once(shared: &Shared, from: Option<i64>) -> bool {
    let idx = match shared.index() {
        Ok(idx) => idx,
        Err(e) => {
            log(&format!("incident detection: {e}"));
            return false;
        }
    };
    let found = match from {
        None => app::incidents(&idx, &shared.cfg.queries),
        Some(t) => app::incidents_since(&idx, &shared.cfg.queries, t).map(|r| r.incidents),
    };
    let list = match found {
        Ok(l) => l,
        Err(e) => {
            log(&format!("incident detection: {e}"));
            return false;
        }
    };
    let skews = app::skews(&idx).unwrap_or_default();
    let mut s = shared.status();
    for inc in list {
        let summary = crate::render::summary(&inc);
        let text = crate::render::text_with_skew(&inc, &skews);
        match s.incidents.get_mut(&inc.id) {
            Some(li) => {
                if li.incident != inc {
                    shared.export(&inc);
                }
                li.summary = summary;
                li.text = text;
                li.incident = inc;
            }
            None => {
                log(&format!("incident detected: {} ({summary})", inc.id));
                shared.export(&inc);
                shared.metrics.incidents.fetch_add(1, Ordering::Relaxed);
                s.incidents.insert(
                    inc.id.clone(),
                    LiveIncident {
                        detected_at: now(),
                        summary,
                        text,
                        incident: inc,
                        rank: 0,
                    },
                );
            }
        }
    }
    // Ranks follow start order over everything known, old incidents and new.
    let mut order: Vec<((i64, u8), String)> = s
        .incidents
        .iter()
        .map(|(id, li)| (li.incident.order_key(), id.clone()))
        .collect();
    order.sort();
    for (rank, (_, id)) in order.into_iter().enumerate() {
        if let Some(li) = s.incidents.get_mut(&id) {
            li.rank = rank;
        }
    }
    true
}

/// Opens the index and builds the shared state (nothing runs yet).
pub fn prepare(
    cfg: ServeConfig,
    dir: DataDir,
    registry: Registry,
) -> Result<(Arc<Shared>, IndexSink)> {
    let mut cfg = cfg;
    cfg.validate()?;
    for w in cfg.resolve_secrets()? {
        log(&w);
    }
    cfg.check_exposure()?;
    // TLS files and SASL settings that cannot work stop the start, naming the file or setting
    // (discovery would only say so in its log and never connect).
    if let Some(z) = &cfg.zookeeper {
        crate::discovery::secure::Secure::new(z.tls.as_ref(), z.sasl.as_ref())
            .map_err(|e| Error::Param(format!("configuration: {e}")))?;
    }
    // A configured format or layout that does not compile is a configuration error, not a
    // notice found later on one source.
    let named = cfg
        .sources
        .iter()
        .map(|s| (&s.node, s.layout.as_ref().or(s.format.as_ref())))
        .chain(
            cfg.ensemble
                .server
                .iter()
                .map(|s| (&s.node, s.layout.as_ref().or(s.format.as_ref()))),
        );
    for (node, spec) in named {
        if let Some(spec) = spec {
            registry
                .resolve(spec)
                .map_err(|e| Error::Param(format!("configuration, node {node}: {e}")))?;
        }
    }
    let sink = IndexSink::open(&dir, 2)?;
    let committed = sink.pending().clone();
    let handed: BTreeMap<String, _> = committed
        .sources
        .iter()
        .map(|c| (c.path.clone(), c.clone()))
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
        agents: Vec::new(),
        last_commit: None,
    };
    let requests = Arc::new(tokio::sync::Semaphore::new(cfg.max_requests.max(1)));
    Ok((
        Arc::new(Shared {
            cfg,
            dir,
            registry: Arc::new(registry),
            status: Mutex::new(status),
            metrics: Metrics::default(),
            started: Instant::now(),
            handed: Arc::new(Mutex::new(handed)),
            committed_at_start: committed,
            index: Mutex::new(None),
            requests,
            intake: intake::Intake::new(crate::source::otlp::Limits::default()),
            local: HostNames::of_machine(),
            exporter: Mutex::new(None),
            export_metrics: export::ExportMetrics::default(),
        }),
        sink,
    ))
}

/// Runs the service until SIGTERM / Ctrl-C: collectors, writer, detector, discovery and API.
pub fn run(cfg: ServeConfig, dir: DataDir, registry: Registry) -> Result<()> {
    let (shared, sink) = prepare(cfg, dir, registry)?;
    // The lake is opened before anything runs: a directory it cannot use stops the service.
    #[cfg(feature = "lake")]
    let lake = match &shared.cfg.sinks.parquet {
        Some(p) => {
            let staging = shared.dir.root().join("lake-staging");
            Some((
                lake::LakeSink::open(&p.dir, &staging, p.max_rows)?,
                p.clone(),
            ))
        }
        None => None,
    };
    let lake_stop = Arc::new(AtomicBool::new(false));
    #[cfg(feature = "lake")]
    let lake_thread = match lake {
        Some((sink, p)) => {
            let (l_shared, l_stop) = (shared.clone(), lake_stop.clone());
            Some(
                std::thread::Builder::new()
                    .name("lake writer".into())
                    .spawn(move || lake_writer(l_shared, sink, p, l_stop))
                    .map_err(|e| Error::Internal(format!("cannot start the lake writer: {e}")))?,
            )
        }
        None => None,
    };
    let (tx, rx) = std::sync::mpsc::sync_channel::<Msg>(shared.cfg.queue.max(1));
    let (ctx, crx) = std::sync::mpsc::channel::<i64>();
    let w_shared = shared.clone();
    let writer_thread = std::thread::Builder::new()
        .name("index writer".into())
        .spawn(move || writer(w_shared, sink, rx, ctx))
        .map_err(|e| Error::Internal(format!("cannot start the writer: {e}")))?;
    if let Some(o) = shared.cfg.export.otlp.clone() {
        let (etx, erx) = std::sync::mpsc::sync_channel::<Incident>(export::QUEUE);
        *shared.exporter.lock().unwrap_or_else(|p| p.into_inner()) = Some(etx);
        let e_shared = shared.clone();
        log(&format!(
            "exporting incidents as traces to {}",
            crate::app::trace::traces_url(&o.endpoint)
        ));
        std::thread::Builder::new()
            .name("trace export".into())
            .spawn(move || export::run(e_shared, o, erx))
            .map_err(|e| Error::Internal(format!("cannot start the trace exporter: {e}")))?;
    }
    let d_shared = shared.clone();
    std::thread::Builder::new()
        .name("incident detector".into())
        .spawn(move || detector(d_shared, crx))
        .map_err(|e| Error::Internal(format!("cannot start the detector: {e}")))?;
    shared.intake.open(tx.clone());
    let manager = Arc::new(Mutex::new(Manager::new(shared.clone(), tx)));
    // Configured sources: the ensemble's logs and hand-written ones.
    {
        let mut m = lock(&manager);
        for s in &shared.cfg.ensemble.server {
            for l in &s.logs {
                let url = format!("file://{}", l.display());
                m.follow(
                    &url,
                    &s.node,
                    s.layout.as_deref().or(s.format.as_deref()),
                    s.tz.as_deref(),
                    None,
                );
            }
        }
        for s in &shared.cfg.sources {
            m.follow(
                &s.url,
                &s.node,
                s.layout.as_deref().or(s.format.as_deref()),
                s.tz.as_deref(),
                None,
            );
        }
    }
    let stop = Arc::new(AtomicBool::new(false));
    let dirs = data_dirs(&shared.cfg);
    let mut txn_threads = Vec::new();
    if !dirs.is_empty() {
        if let Some(tx) = lock(&manager).sender() {
            let c = &shared.committed_at_start;
            let ensemble = shared.cfg.ensemble.name();
            let txns = TxnLogFollower::new(dirs.clone(), c, ensemble)
                .with_max_record_len(shared.cfg.max_record_len);
            let snaps = SnapshotWatcher::new(dirs, c, ensemble)
                .with_max_sessions(shared.cfg.max_snapshot_sessions);
            txn_threads.extend(spawn_collector(
                &shared,
                "snapshot watcher",
                Box::new(snaps),
                tx.clone(),
                stop.clone(),
            ));
            txn_threads.extend(spawn_collector(
                &shared,
                "txn follower",
                Box::new(txns),
                tx,
                stop.clone(),
            ));
        }
    }
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
            let (zk2, srx2, agents_shared) = (zk.clone(), srx.clone(), shared.clone());
            tokio::spawn(async move {
                if let Err(e) = crate::discovery::watch::run(zk, dtx, srx).await {
                    log(&format!("ZooKeeper discovery stopped: {e}"));
                }
            });
            // The agents registered under /zklens/agents: who covers which registration.
            let (atx, mut arx) = tokio::sync::mpsc::channel::<Vec<AgentInfo>>(16);
            tokio::spawn(async move {
                if let Err(e) = crate::discovery::agents::follow(zk2, atx, srx2).await {
                    log(&format!("listing agents stopped: {e}"));
                }
            });
            tokio::spawn(async move {
                while let Some(list) = arx.recv().await {
                    let mut st = agents_shared.status();
                    let before: Vec<&str> = st.agents.iter().map(|a| a.host.as_str()).collect();
                    let now: Vec<&str> = list.iter().map(|a| a.host.as_str()).collect();
                    if before != now {
                        log(&format!(
                            "agents: {}",
                            if now.is_empty() {
                                "none".to_string()
                            } else {
                                now.join(", ")
                            }
                        ));
                    }
                    st.agents = list;
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
            .map_err(|error| Error::Listen {
                addr: shared.cfg.listen.to_string(),
                error,
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
    shared.intake.close();
    for t in txn_threads {
        let _ = t.join();
    }
    lock(&manager).shutdown();
    drop(manager);
    rt.shutdown_timeout(Duration::from_secs(2));
    let w = writer_thread
        .join()
        .map_err(|_| Error::Internal("the index writer panicked".into()))?;
    w?;
    // The lake publishes what the final commit added, then stops.
    lake_stop.store(true, Ordering::Relaxed);
    #[cfg(feature = "lake")]
    if let Some(t) = lake_thread {
        let _ = t.join();
    }
    log("stopped; everything read is committed");
    served
}

/// Publishes the committed events into the lake every `interval_s`, and once more when `stop`
/// is set (after the writer's final commit).
#[cfg(feature = "lake")]
fn lake_writer(
    shared: Arc<Shared>,
    mut sink: lake::LakeSink,
    cfg: config::ParquetSink,
    stop: Arc<AtomicBool>,
) {
    let at = sink.location();
    log(&format!(
        "lake {at}: published up to store offset {}",
        sink.published()
    ));
    let every = Duration::from_secs(cfg.interval_s.max(1));
    // The first publication comes soon: it finishes one a crash may have cut.
    let mut last: Option<Instant> = None;
    loop {
        let stopping = stop.load(Ordering::Relaxed);
        if stopping || last.is_none_or(|l| l.elapsed() >= every) {
            match shared.index().and_then(|idx| sink.publish(&idx)) {
                Ok(files) if !files.is_empty() => log(&format!(
                    "lake {at}: {} files published, up to store offset {}",
                    files.len(),
                    sink.published()
                )),
                Ok(_) => {}
                Err(e) => log(&format!("lake {at}: {e}")),
            }
            last = Some(Instant::now());
            if stopping {
                return;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
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

#[cfg(test)]
mod tests;
