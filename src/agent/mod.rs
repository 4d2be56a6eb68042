//! `zklens agent`: runs on each host, follows the logs ZooKeeper's registrations place on that
//! host (and the ZooKeeper servers' files configured for it), and ships them to the central
//! `zklens serve` over OTLP/HTTP (`POST /v1/logs`).
//!
//! ```text
//! discovery (services root) ──> registrations naming this host ──┐
//! configured files ──────────────────────────────────────────────┤
//!                                                                v
//!               reader thread: a Tailer per file, whole entries ──> spool (disk, bounded)
//!                                                                        │ in order
//!                                                                        v
//!               sender thread: POST /v1/logs (gzip protobuf); 2xx = committed ──> removed
//! membership: ephemeral /zklens/agents/<host> {version, health URL, addresses}
//! HTTP: /health, /metrics, /api/status
//! ```
//!
//! **Nothing lost, nothing twice.** Each record carries its source's key
//! (`agent://HOST/path`), byte offset, line number and end; the service drops what it already
//! committed, so resending is always safe. The agent removes a spooled request only after a 2xx,
//! which the service answers after the commit that holds it. Its read positions are saved after
//! each request is spooled; after `kill -9` it reads again from there, and what it sends twice
//! is dropped by the service. A file it has no position for starts where the service's
//! checkpoint for its key says (`GET /api/checkpoints`), when the file's first line is still
//! the one the service saw.

pub mod config;
pub mod reader;
pub mod spool;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::{mpsc, watch};

use crate::checkpoint::Checkpoint;
use crate::discovery::agents::{self, AgentInfo};
use crate::discovery::host::HostNames;
use crate::discovery::{watch as disco, DiscoveryEvent, Registration};
use crate::error::{Error, Result};
use crate::parser::Registry;
use crate::source::policy::{self, Target};
use crate::time::rfc3339;

use config::AgentConfig;
use reader::{FileSpec, Followed, RequestBuilder};
use spool::Spool;

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Requests the service took.
    pub sent_requests: AtomicU64,
    /// Log bytes the service took.
    pub sent_bytes: AtomicU64,
    /// Lines read and spooled.
    pub lines: AtomicU64,
    /// Failed attempts (service unreachable or answering 5xx).
    pub failures: AtomicU64,
    /// Requests the service refused for good (400): moved to `spool/rejected/`.
    pub rejected: AtomicU64,
    /// Log bytes dropped: requests the service refused for good, or a spool that could not be
    /// written.
    pub dropped_bytes: AtomicU64,
    /// 1 while the last attempt reached the service.
    pub server_up: AtomicU64,
    /// Times every source was read again from the service's checkpoints (it held less).
    pub rewinds: AtomicU64,
}

/// One followed file, for `/api/status`.
#[derive(Debug, Clone, Serialize)]
pub struct FileStatus {
    /// Source key.
    pub key: String,
    /// The file.
    pub path: String,
    /// Node.
    pub node: String,
    /// The registration it came from (None: configured).
    pub registration: Option<String>,
    /// Offset of the first line not spooled.
    pub offset: u64,
    /// Lines spooled (this process).
    pub lines: u64,
    /// Last notices.
    pub notices: Vec<String>,
}

/// What the agent shows.
#[derive(Debug, Default, Serialize)]
pub struct Status {
    /// Its identity.
    pub host: String,
    /// The central service.
    pub server: String,
    /// Files followed.
    pub files: BTreeMap<String, FileStatus>,
    /// Registrations seen and why each is or is not followed here.
    pub registrations: BTreeMap<String, String>,
    /// Recent refusals and problems.
    pub refusals: Vec<String>,
}

/// State shared by the agent's parts.
#[derive(Debug)]
pub struct Shared {
    /// Configuration.
    pub cfg: AgentConfig,
    /// Its names.
    pub names: HostNames,
    /// Counters.
    pub metrics: Metrics,
    /// The spool.
    pub spool: Spool,
    /// Status.
    pub status: Mutex<Status>,
}

impl Shared {
    fn status(&self) -> std::sync::MutexGuard<'_, Status> {
        self.status.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn refused(&self, msg: String) {
        log(&msg);
        let mut s = self.status();
        s.refusals.push(format!("{} {msg}", now()));
        if s.refusals.len() > 100 {
            s.refusals.remove(0);
        }
    }
}

fn now() -> String {
    let ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64);
    rfc3339(ns)
}

/// Logs a line for the operator (stderr, timestamped).
pub fn log(msg: &str) {
    eprintln!("{} zklens agent: {msg}", now());
}

/// What the reader is told.
#[derive(Debug)]
enum Cmd {
    Follow(FileSpec),
    Unfollow(String, String),
    /// The service holds less than this agent thinks (its data was lost or restored): drop
    /// the spool and read every source again from the service's checkpoints (by key; none:
    /// from the start). Answered when done.
    Rewind(BTreeMap<String, Checkpoint>, Sender<()>),
}

/// Runs the agent until SIGINT or SIGTERM.
pub fn run(mut cfg: AgentConfig, registry: Registry) -> Result<()> {
    cfg.validate()?;
    let names = match &cfg.host {
        Some(h) => HostNames::named(h),
        None => HostNames::of_machine(),
    };
    agents::path_of(&names.name).map_err(|e| Error::Param(e.to_string()))?;
    let dir = match &cfg.data_dir {
        Some(d) => d.clone(),
        None => default_data_dir(&names.name),
    };
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    let spool = Spool::open(&dir.join("spool"), cfg.spool_max_bytes)?;
    cfg.server = cfg.server.trim_end_matches('/').to_string();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::Internal(format!("cannot start the runtime: {e}")))?;
    let listener = rt
        .block_on(tokio::net::TcpListener::bind(cfg.listen))
        .map_err(|e| Error::Listen {
            addr: cfg.listen.to_string(),
            error: e,
        })?;
    let listen = listener.local_addr().map_err(|e| Error::Listen {
        addr: cfg.listen.to_string(),
        error: e,
    })?;
    let shared = Arc::new(Shared {
        names: names.clone(),
        metrics: Metrics::default(),
        spool,
        status: Mutex::new(Status {
            host: names.name.clone(),
            server: cfg.server.clone(),
            ..Status::default()
        }),
        cfg,
    });
    let also = if names.addresses.is_empty() {
        String::new()
    } else {
        format!(" (also {})", names.addresses.join(", "))
    };
    log(&format!(
        "host {}{also}, shipping to {}, spool {} ({} requests waiting), health on http://{listen}/health",
        names.name,
        shared.cfg.server,
        dir.join("spool").display(),
        shared.spool.len()
    ));
    let stop = Arc::new(AtomicBool::new(false));
    let (ctx, crx) = std::sync::mpsc::channel::<Cmd>();
    for f in &shared.cfg.files {
        let key = format!("agent://{}{}", names.name, f.path.display());
        let _ = ctx.send(Cmd::Follow(FileSpec {
            key,
            path: f.path.clone(),
            root: None,
            node: f.node.clone(),
            service: None,
            znode: None,
            format: f.format.clone(),
        }));
    }
    let reader = {
        let (shared, stop, dir) = (shared.clone(), stop.clone(), dir.clone());
        std::thread::Builder::new()
            .name("agent reader".into())
            .spawn(move || read_loop(&shared, &registry, &dir, &crx, &stop))
            .map_err(|e| Error::Internal(format!("cannot start the reader: {e}")))?
    };
    let sender = {
        let (shared, stop, ctx) = (shared.clone(), stop.clone(), ctx.clone());
        std::thread::Builder::new()
            .name("agent sender".into())
            .spawn(move || send_loop(&shared, &stop, &ctx))
            .map_err(|e| Error::Internal(format!("cannot start the sender: {e}")))?
    };
    let info = AgentInfo {
        host: names.name.clone(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        health: Some(format!("http://{listen}/health")),
        addresses: names.addresses.clone(),
        started: now(),
        session: None,
        unreadable: None,
    };
    let result = rt.block_on(async {
        let (sd_tx, sd_rx) = watch::channel(false);
        let zk = shared.cfg.zookeeper.clone();
        let membership = tokio::spawn(agents::hold(zk.clone(), info, sd_rx.clone()));
        let (dtx, mut drx) = mpsc::channel::<DiscoveryEvent>(256);
        let discovery = tokio::spawn(disco::run(zk, dtx, sd_rx.clone()));
        let http = tokio::spawn(serve_http(listener, shared.clone(), sd_rx.clone()));
        let mut by_znode: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let signal = shutdown_signal();
        tokio::pin!(signal);
        loop {
            tokio::select! {
                _ = &mut signal => break,
                ev = drx.recv() => match ev {
                    Some(ev) => on_discovery(&shared, ev, &ctx, &mut by_znode),
                    None => break,
                },
            }
        }
        let _ = sd_tx.send(true);
        let _ = membership.await;
        let _ = http.await;
        match discovery.await {
            Ok(Err(e)) => Err(Error::Param(e.to_string())),
            _ => Ok(()),
        }
    });
    log("stopping: shipping what was read, then leaving");
    stop.store(true, Ordering::Relaxed);
    drop(ctx);
    let _ = reader.join();
    let _ = sender.join();
    result
}

/// `$XDG_STATE_HOME/zklens-agent/<host>`, else `~/.local/state/...`, else `./zklens-agent`.
fn default_data_dir(host: &str) -> PathBuf {
    let base = std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".local/state")))
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("zklens-agent").join(host)
}

async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}

/// The path of a `file://` URL, when it is one.
fn file_path(url: &str) -> Option<&str> {
    url.strip_prefix("file://").filter(|p| p.starts_with('/'))
}

/// Whether this agent follows `reg` (its `host` names this host).
fn ours(shared: &Shared, reg: &Registration) -> bool {
    reg.host.as_deref().is_some_and(|h| shared.names.matches(h))
}

fn on_discovery(
    shared: &Shared,
    ev: DiscoveryEvent,
    ctx: &Sender<Cmd>,
    by_znode: &mut BTreeMap<String, Vec<String>>,
) {
    match ev {
        DiscoveryEvent::Registered(reg) => {
            let old = by_znode.remove(&reg.znode).unwrap_or_default();
            let mut keys = Vec::new();
            let why = if ours(shared, &reg) {
                for l in &reg.logs {
                    let Some(p) = file_path(&l.url) else {
                        continue; // HTTP logs are the service's to pull
                    };
                    let key = format!("agent://{}{p}", shared.names.name);
                    match policy::check(&l.url, &shared.cfg.security) {
                        Ok(Target::File { path, root }) => {
                            keys.push(key.clone());
                            if !old.contains(&key) {
                                let _ = ctx.send(Cmd::Follow(FileSpec {
                                    key,
                                    path,
                                    root,
                                    node: reg.instance.clone(),
                                    service: Some(reg.service.clone()),
                                    znode: Some(reg.znode.clone()),
                                    format: l.format.clone(),
                                }));
                            }
                        }
                        Ok(Target::Http { .. }) => {}
                        Err(reason) => {
                            shared.refused(format!("registration {}: {reason}", reg.znode))
                        }
                    }
                }
                format!("following {} file(s) of {}", keys.len(), reg.instance)
            } else {
                format!(
                    "not this host's: host {}",
                    reg.host.as_deref().unwrap_or("(none)")
                )
            };
            for k in old.iter().filter(|k| !keys.contains(k)) {
                let _ = ctx.send(Cmd::Unfollow(
                    k.clone(),
                    format!("registration {} no longer places it here", reg.znode),
                ));
            }
            log(&format!("registration {}: {why}", reg.znode));
            shared.status().registrations.insert(reg.znode.clone(), why);
            if !keys.is_empty() {
                by_znode.insert(reg.znode, keys);
            }
        }
        DiscoveryEvent::Unregistered { znode } => {
            for k in by_znode.remove(&znode).unwrap_or_default() {
                let _ = ctx.send(Cmd::Unfollow(k, format!("registration {znode} is gone")));
            }
            shared.status().registrations.remove(&znode);
        }
        DiscoveryEvent::Rejected { znode, reason } => {
            shared.refused(format!("registration {znode} rejected: {reason}"));
        }
        DiscoveryEvent::Connected { session } => {
            log(&format!("ZooKeeper session {session:#x} connected"));
        }
        DiscoveryEvent::Disconnected => {
            log("ZooKeeper connection lost; reconnecting (files keep being shipped)")
        }
        DiscoveryEvent::Expired { session } => {
            log(&format!(
                "ZooKeeper session {session:#x} expired; re-listing registrations"
            ));
        }
        DiscoveryEvent::Ensemble(_) => {}
    }
}

/// Saved read positions: `state.json` in the data directory.
fn load_positions(dir: &Path) -> BTreeMap<String, Checkpoint> {
    let p = dir.join("positions.json");
    match std::fs::read(&p) {
        Ok(b) => serde_json::from_slice(&b).unwrap_or_else(|e| {
            log(&format!(
                "{}: {e}; starting from the service's checkpoints",
                p.display()
            ));
            BTreeMap::new()
        }),
        Err(_) => BTreeMap::new(),
    }
}

fn save_positions(dir: &Path, pos: &BTreeMap<String, Checkpoint>) -> std::io::Result<()> {
    let tmp = dir.join(".positions.json");
    let body = serde_json::to_vec(pos).map_err(std::io::Error::other)?;
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&body)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, dir.join("positions.json"))
}

/// Asks the service's `GET /api/checkpoints` with one query parameter; its JSON answer.
fn ask_checkpoints(
    shared: &Shared,
    agent: &ureq::Agent,
    param: (&str, &str),
) -> std::result::Result<serde_json::Value, String> {
    let url = format!("{}/api/checkpoints", shared.cfg.server);
    let auth = format!("Bearer {}", shared.cfg.token.as_deref().unwrap_or_default());
    let mut resp = agent
        .get(&url)
        .query(param.0, param.1)
        .header("Authorization", &auth)
        .call()
        .map_err(|e| format!("{url}: {e}"))?;
    let status = resp.status().as_u16();
    let body = resp
        .body_mut()
        .with_config()
        .limit(64 << 20)
        .read_to_vec()
        .map_err(|e| format!("{url}: {e}"))?;
    if status != 200 {
        return Err(format!("{url} answered {status}"));
    }
    serde_json::from_slice(&body).map_err(|e| format!("{url}: unexpected answer: {e}"))
}

/// The service's checkpoint of a source as a position to resume its file at. The service's
/// fingerprint is the first line's, which is also the file's first `fp_len` bytes: the tailer
/// checks it before resuming (and knows no file identity from the service).
fn resume_at(c: &Checkpoint) -> Checkpoint {
    Checkpoint {
        file: None,
        ..c.clone()
    }
}

/// The service's acknowledged checkpoint for `key`, as a position to resume the file at (None:
/// the service has none, or cannot be asked now: the file is read from its start and the
/// service drops what it already has).
fn service_position(shared: &Shared, key: &str) -> Option<Checkpoint> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(5)))
        .http_status_as_error(false)
        .build()
        .into();
    let v = ask_checkpoints(shared, &agent, ("source", key)).ok()?;
    let cp: Checkpoint = serde_json::from_value(v.get("checkpoint")?.clone()).ok()?;
    Some(resume_at(&cp))
}

fn read_loop(
    shared: &Shared,
    registry: &Registry,
    dir: &Path,
    rx: &Receiver<Cmd>,
    stop: &AtomicBool,
) {
    let cfg = &shared.cfg;
    let mut positions = load_positions(dir);
    let mut files: BTreeMap<String, Followed> = BTreeMap::new();
    let poll = Duration::from_millis(cfg.poll_ms.max(10));
    let flush = Duration::from_millis(cfg.flush_ms);
    let budget = cfg.max_request_bytes;
    let mut said_full = false;
    loop {
        let stopping = stop.load(Ordering::Relaxed);
        let mut leaving: Vec<(Followed, String)> = Vec::new();
        while let Ok(cmd) = rx.try_recv() {
            match cmd {
                Cmd::Follow(spec) => {
                    if files.contains_key(&spec.key) {
                        continue;
                    }
                    let resume = positions
                        .get(&spec.key)
                        .cloned()
                        .or_else(|| service_position(shared, &spec.key));
                    log(&format!(
                        "following {} as {} ({}) from offset {}",
                        spec.path.display(),
                        spec.node,
                        spec.key,
                        resume.as_ref().map_or(0, |c| c.offset)
                    ));
                    let f = Followed::new(spec, resume, registry);
                    files.insert(f.spec.key.clone(), f);
                }
                Cmd::Unfollow(key, why) => {
                    if let Some(f) = files.remove(&key) {
                        leaving.push((f, why));
                    }
                }
                Cmd::Rewind(acked, done) => {
                    shared.spool.clear();
                    for (key, f) in files.iter_mut() {
                        let resume = acked.get(key).map(resume_at);
                        log(&format!(
                            "{key}: reading again from offset {} (the service's checkpoint)",
                            resume.as_ref().map_or(0, |c| c.offset)
                        ));
                        *f = Followed::new(f.spec.clone(), resume, registry);
                        positions.insert(key.clone(), f.checkpoint());
                    }
                    positions.retain(|k, _| files.contains_key(k) || acked.contains_key(k));
                    for (k, c) in &acked {
                        if !files.contains_key(k) && positions.contains_key(k) {
                            positions.insert(k.clone(), resume_at(c));
                        }
                    }
                    if let Err(e) = save_positions(dir, &positions) {
                        shared.refused(format!("{}: cannot save positions: {e}", dir.display()));
                    }
                    let _ = done.send(());
                }
            }
        }
        let full = !shared.spool.fits(budget);
        if full && !stopping && leaving.is_empty() {
            if !said_full {
                log(&format!(
                    "spool full ({} bytes): reading pauses until the service takes some",
                    shared.spool.bytes()
                ));
                said_full = true;
            }
            std::thread::sleep(poll);
            continue;
        }
        said_full = false;
        let mut req = RequestBuilder::default();
        let mut touched = false;
        let host = shared.names.name.clone();
        let ensemble = cfg.ensemble.as_deref();
        for (f, why) in leaving.iter_mut() {
            // What is left of it, within bounds (the rest is read if it comes back).
            let ready = f.poll(registry, DRAIN_BUDGET, flush, true);
            req.add(f, &host, ensemble, ready);
            positions.insert(f.spec.key.clone(), f.checkpoint());
            log(&format!("stopped following {}: {why}", f.spec.key));
            touched = true;
        }
        let mut busy = false;
        for f in files.values_mut() {
            let ready = f.poll(registry, budget, flush, stopping);
            let got: u64 = ready
                .iter()
                .map(|r| r.end.saturating_sub(r.line.offset))
                .sum();
            // A file with more to read than one poll takes: poll again at once.
            busy |= got as usize >= budget / 2;
            if !ready.is_empty() {
                shared
                    .metrics
                    .lines
                    .fetch_add(ready.len() as u64, Ordering::Relaxed);
                req.add(f, &host, ensemble, ready);
                touched = true;
            }
            positions.insert(f.spec.key.clone(), f.checkpoint());
            if req.log_bytes as usize >= budget {
                spool_request(shared, std::mem::take(&mut req));
                if let Err(e) = save_positions(dir, &positions) {
                    shared.refused(format!("{}: cannot save positions: {e}", dir.display()));
                }
            }
        }
        if !req.is_empty() {
            spool_request(shared, req);
        }
        if touched {
            if let Err(e) = save_positions(dir, &positions) {
                shared.refused(format!("{}: cannot save positions: {e}", dir.display()));
            }
        }
        {
            let mut st = shared.status();
            st.files = files
                .values()
                .map(|f| {
                    let cp = f.checkpoint();
                    (
                        f.spec.key.clone(),
                        FileStatus {
                            key: f.spec.key.clone(),
                            path: f.spec.path.display().to_string(),
                            node: f.spec.node.clone(),
                            registration: f.spec.znode.clone(),
                            offset: cp.offset,
                            lines: f.lines,
                            notices: f.notices.clone(),
                        },
                    )
                })
                .collect();
        }
        if stopping {
            return;
        }
        if !busy {
            std::thread::sleep(poll);
        }
    }
}

/// Most bytes read from a file the agent stops following (what is left is read when it comes
/// back: its position is kept).
const DRAIN_BUDGET: usize = 64 << 20;

/// Writes a request to the spool (the reader checked there is room).
fn spool_request(shared: &Shared, mut req: RequestBuilder) {
    if req.is_empty() {
        return;
    }
    let log_bytes = req.log_bytes;
    let spans = std::mem::take(&mut req.spans);
    let body = match req.finish() {
        Ok(b) => b,
        Err(e) => {
            shared.refused(format!("cannot compress a request: {e}"));
            return;
        }
    };
    if let Err(e) = shared.spool.push(log_bytes, &spans, &body) {
        shared
            .metrics
            .dropped_bytes
            .fetch_add(log_bytes, Ordering::Relaxed);
        shared.refused(format!("spool: {e}; {log_bytes} bytes of logs dropped"));
    }
}

/// Sends the spool's requests in order, each until the service takes it. Before the first
/// request, after every failure (the service may have restarted) and every
/// [`RECONCILE_EVERY`], it compares the service's checkpoints with what it still holds
/// ([`reconcile`]).
fn send_loop(shared: &Shared, stop: &AtomicBool, ctx: &Sender<Cmd>) {
    let mut last_check = Instant::now();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(30)))
        .http_status_as_error(false)
        .build()
        .into();
    let url = format!("{}/v1/logs", shared.cfg.server);
    let auth = format!("Bearer {}", shared.cfg.token.as_deref().unwrap_or_default());
    let mut backoff = Duration::from_millis(100);
    let mut said: Option<String> = None;
    let mut stopping_since: Option<Instant> = None;
    let mut check = true;
    loop {
        if stop.load(Ordering::Relaxed) {
            // Drain for a moment, then leave the rest on disk for the next run.
            let since = *stopping_since.get_or_insert_with(Instant::now);
            if shared.spool.is_empty() || since.elapsed() > Duration::from_secs(5) {
                return;
            }
        }
        if last_check.elapsed() >= RECONCILE_EVERY {
            check = true;
        }
        let problem = if check {
            match reconcile(shared, &agent, ctx) {
                Ok(()) => {
                    check = false;
                    last_check = Instant::now();
                    continue;
                }
                Err(p) => p,
            }
        } else {
            let Some(req) = shared.spool.oldest() else {
                std::thread::sleep(Duration::from_millis(20));
                continue;
            };
            match post(shared, &agent, &url, &auth, &req) {
                Ok(()) => {
                    if said.take().is_some() {
                        log(&format!("{url}: reached again; sending the spool in order"));
                    }
                    backoff = Duration::from_millis(100);
                    continue;
                }
                Err(p) => p,
            }
        };
        check = true;
        shared.metrics.failures.fetch_add(1, Ordering::Relaxed);
        shared.metrics.server_up.store(0, Ordering::Relaxed);
        if said.as_deref() != Some(problem.as_str()) {
            log(&format!(
                "{problem}; keeping {} request(s) ({} bytes) on disk and retrying",
                shared.spool.len(),
                shared.spool.bytes()
            ));
            said = Some(problem);
        }
        let until = Instant::now() + backoff;
        while Instant::now() < until && !stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(20));
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
        if stop.load(Ordering::Relaxed) {
            return;
        }
    }
}

/// POSTs one spooled request: `Ok` once it is settled (taken, or refused for good and set
/// aside), `Err` with what went wrong when it must be sent again.
fn post(
    shared: &Shared,
    agent: &ureq::Agent,
    url: &str,
    auth: &str,
    req: &spool::Spooled,
) -> std::result::Result<(), String> {
    let sent = agent
        .post(url)
        .header("Content-Type", "application/x-protobuf")
        .header("Content-Encoding", "gzip")
        .header("Authorization", auth)
        .send(&req.body[..]);
    let mut resp = sent.map_err(|e| format!("{url}: {e}"))?;
    let status = resp.status().as_u16();
    let text = resp
        .body_mut()
        .with_config()
        .limit(4096)
        .read_to_string()
        .unwrap_or_default();
    let m = &shared.metrics;
    match status {
        200..=299 => {
            shared.spool.remove(req.seq);
            m.sent_requests.fetch_add(1, Ordering::Relaxed);
            m.sent_bytes.fetch_add(req.log_bytes, Ordering::Relaxed);
            m.server_up.store(1, Ordering::Relaxed);
            Ok(())
        }
        400 | 413 | 415 => {
            // Never acceptable as it is: kept aside, not retried forever.
            shared.spool.reject(req.seq);
            m.rejected.fetch_add(1, Ordering::Relaxed);
            m.dropped_bytes.fetch_add(req.log_bytes, Ordering::Relaxed);
            m.server_up.store(1, Ordering::Relaxed);
            shared.refused(format!(
                "{url}: request {} refused ({status}: {}); moved to spool/rejected",
                req.seq,
                text.trim()
            ));
            Ok(())
        }
        // 409: the service holds less than this request follows on from (its data was lost):
        // the reconciliation that follows every failure reads the files again.
        _ => Err(format!("{url} answered {status}: {}", text.trim())),
    }
}

/// How often the agent compares the service's checkpoints with its own even when nothing
/// failed (a service restarted from an older copy of its data between two requests).
pub const RECONCILE_EVERY: Duration = Duration::from_secs(10);

/// Asks the service for its checkpoints (`GET /api/checkpoints`) and compares them with what
/// this agent still holds of each source (its spooled requests, else where its reader stands).
/// When the service holds less (its data was lost, or restored from an older copy), nothing
/// spooled can follow on from it: the reader is told to drop the spool and read every source
/// again from the service's checkpoints, and the service drops whatever it already has.
fn reconcile(
    shared: &Shared,
    agent: &ureq::Agent,
    ctx: &Sender<Cmd>,
) -> std::result::Result<(), String> {
    let prefix = format!("agent://{}/", shared.names.name);
    #[derive(serde::Deserialize)]
    struct All {
        sources: Vec<Checkpoint>,
    }
    let all: All = serde_json::from_value(ask_checkpoints(shared, agent, ("prefix", &prefix))?)
        .map_err(|e| format!("GET /api/checkpoints: unexpected answer: {e}"))?;
    let acked: BTreeMap<String, Checkpoint> = all
        .sources
        .into_iter()
        .filter(|c| c.path.starts_with(&prefix))
        .map(|c| (c.path.clone(), c))
        .collect();
    // The reader spools a request before it moves its position: read the position first.
    let mut held: BTreeMap<String, u64> = shared
        .status()
        .files
        .iter()
        .map(|(k, f)| (k.clone(), f.offset))
        .collect();
    for (k, low) in shared.spool.lowest() {
        held.insert(k, low);
    }
    let behind: Vec<String> = held
        .iter()
        .filter(|(k, &low)| acked.get(*k).map_or(0, |c| c.offset) < low)
        .map(|(k, low)| {
            format!(
                "{k} (the service has up to {}, this agent from {low})",
                acked.get(k).map_or(0, |c| c.offset)
            )
        })
        .collect();
    if behind.is_empty() {
        return Ok(());
    }
    shared.refused(format!(
        "the service holds less than this agent sent it (its data lost or restored?): {}; reading every source again from the service's checkpoints",
        behind.join(", ")
    ));
    shared.metrics.rewinds.fetch_add(1, Ordering::Relaxed);
    let (tx, rx) = std::sync::mpsc::channel();
    ctx.send(Cmd::Rewind(acked, tx))
        .map_err(|_| "the reader is gone".to_string())?;
    rx.recv_timeout(Duration::from_secs(60))
        .map_err(|_| "the reader did not rewind".to_string())
}

/// `/health`, `/metrics`, `/api/status` until shutdown.
async fn serve_http(
    listener: tokio::net::TcpListener,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    use axum::routing::get;
    let app = axum::Router::new()
        .route("/health", get(|| async { "ok\n" }))
        .route(
            "/metrics",
            get({
                let s = shared.clone();
                move || {
                    let s = s.clone();
                    async move { metrics_text(&s) }
                }
            }),
        )
        .route(
            "/api/status",
            get({
                let s = shared.clone();
                move || {
                    let s = s.clone();
                    async move {
                        let st = s.status();
                        axum::Json(serde_json::json!({
                            "status": &*st,
                            "spool": {"bytes": s.spool.bytes(), "requests": s.spool.len()},
                        }))
                    }
                }
            }),
        );
    let _ = axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            let _ = shutdown.wait_for(|v| *v).await;
        })
        .await;
}

fn metrics_text(s: &Shared) -> String {
    let m = &s.metrics;
    let g = |v: &AtomicU64| v.load(Ordering::Relaxed);
    let files = s.status().files.len();
    let rows: [(&str, &str, &str, u64); 11] = [
        (
            "zklens_agent_spool_bytes",
            "gauge",
            "Bytes of requests waiting on disk",
            s.spool.bytes(),
        ),
        (
            "zklens_agent_spool_requests",
            "gauge",
            "Requests waiting on disk",
            s.spool.len() as u64,
        ),
        (
            "zklens_agent_dropped_bytes_total",
            "counter",
            "Log bytes dropped (requests refused for good, a spool that could not be written)",
            g(&m.dropped_bytes),
        ),
        (
            "zklens_agent_sent_requests_total",
            "counter",
            "Requests the service committed",
            g(&m.sent_requests),
        ),
        (
            "zklens_agent_sent_bytes_total",
            "counter",
            "Log bytes the service committed",
            g(&m.sent_bytes),
        ),
        (
            "zklens_agent_lines_total",
            "counter",
            "Lines read and spooled",
            g(&m.lines),
        ),
        (
            "zklens_agent_send_failures_total",
            "counter",
            "Attempts that did not reach the service or got 5xx",
            g(&m.failures),
        ),
        (
            "zklens_agent_rejected_requests_total",
            "counter",
            "Requests the service refused for good",
            g(&m.rejected),
        ),
        (
            "zklens_agent_server_up",
            "gauge",
            "1 when the last attempt reached the service",
            g(&m.server_up),
        ),
        (
            "zklens_agent_files",
            "gauge",
            "Files followed",
            files as u64,
        ),
        (
            "zklens_agent_rewinds_total",
            "counter",
            "Times the service held less than was sent (its data lost or restored) and every file was read again from its checkpoints",
            g(&m.rewinds),
        ),
    ];
    let mut out = String::new();
    for (name, kind, help, v) in rows {
        out.push_str(&format!(
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}\n"
        ));
    }
    out
}
