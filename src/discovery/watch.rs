//! Following the services root with `zookeeper-client` (tokio).
//!
//! [`run`] connects, reports the ensemble, lists every registration under the services root and
//! then follows it, until shutdown. What it reports, in order, on its channel:
//!
//! * [`DiscoveryEvent::Connected`] when a session is established, and again (same session id)
//!   after each reconnect; [`DiscoveryEvent::Disconnected`] when the connection is lost.
//! * [`DiscoveryEvent::Ensemble`] after every (re)connect: the members in `/zookeeper/config`
//!   (ZooKeeper 3.5+), else the hosts of the connect string.
//! * [`DiscoveryEvent::Registered`] / [`DiscoveryEvent::Rejected`] for each znode under the root
//!   holding data (at any depth up to [`MAX_DEPTH`]), when it first appears and whenever its
//!   parsed registration (or rejection reason) changes; [`DiscoveryEvent::Unregistered`] when a
//!   znode reported earlier (registered or rejected) is gone. A znode with children whose data is
//!   not a registration is taken for a directory and not reported; empty znodes never are.
//! * [`DiscoveryEvent::Expired`] when the session expired; a new client is built and the root
//!   re-listed. The known set survives sessions: after every reconnect and every new session the
//!   tree is listed again and only the differences are reported (events can be missed during a
//!   reconnect, ZOOKEEPER-4698).
//!
//! Changes are followed with one persistent recursive watch on the root (ZooKeeper 3.6+; it can
//! be set before the root exists, so a missing root is simply waited for), set again after every
//! reconnect (zookeeper-client 0.11.2 does not restore persistent watches itself). When the server
//! rejects it (3.5), one-shot child and data watches are set on every znode of the tree instead
//! (an exists watch on a missing root), and every notification re-lists the tree.
//!
//! No server answering never spins: connection attempts back off from
//! [`RunOptions::backoff_min`] to [`RunOptions::backoff_max`] (with jitter), and the client's own
//! reconnect loop backs off too.
//!
//! Znode paths are those the client sees: relative to the chroot of the connect string.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use zookeeper_client as zk;

use super::registration::{self, RegistrationError};
use super::secure::{Secure, SecureError};
use super::{DiscoveryEvent, EnsembleMember, Registration, ZkConfig};

/// Deepest znode below the services root that is looked at (`/services/<name>/<id>` is depth 2).
pub const MAX_DEPTH: usize = 8;
/// Most znodes one listing of the services root visits; past that the rest is ignored (and said
/// so on stderr).
pub const MAX_NODES: usize = 20_000;

/// Errors that stop [`run`]: only a configuration that can never work. Everything the ensemble
/// does (no server answering, expiry, authentication failure) is retried.
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    /// The connect string cannot be parsed.
    #[error("ZooKeeper connect string {connect:?}: {reason}")]
    Connect {
        /// The connect string.
        connect: String,
        /// What is wrong.
        reason: String,
    },
    /// The services root is not an absolute znode path.
    #[error("services root {0:?}: not an absolute znode path (like /services)")]
    Root(String),
    /// Digest auth is not `user:password`.
    #[error("ZooKeeper digest auth: expected user:password")]
    Auth,
    /// The TLS or SASL settings cannot work.
    #[error(transparent)]
    Secure(#[from] SecureError),
}

/// How changes are followed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WatchStrategy {
    /// A persistent recursive watch, one-shot watches when the server rejects it.
    #[default]
    Auto,
    /// One-shot watches only (what a 3.5 server gets; for tests).
    OneShot,
}

/// Tuning of [`run_with`]; [`run`] uses the defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOptions {
    /// How changes are followed.
    pub strategy: WatchStrategy,
    /// First wait after a failed connection attempt (doubles up to `backoff_max`).
    pub backoff_min: Duration,
    /// Longest wait between connection attempts.
    pub backoff_max: Duration,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            strategy: WatchStrategy::Auto,
            backoff_min: Duration::from_millis(250),
            backoff_max: Duration::from_secs(8),
        }
    }
}

/// Discovers the ensemble and the registrations under `cfg.services_root`, sending
/// [`DiscoveryEvent`]s on `tx` (see the module documentation for what and when), until
/// `shutdown` becomes `true` (or its sender is dropped) or `tx`'s receiver is dropped; then
/// returns `Ok(())`. Returns an error at once only for a configuration that cannot work (bad
/// connect string, services root or auth). Spawns no task that outlives it except the client's
/// own, which end when it returns.
pub async fn run(
    cfg: ZkConfig,
    tx: mpsc::Sender<DiscoveryEvent>,
    shutdown: watch::Receiver<bool>,
) -> Result<(), DiscoveryError> {
    run_with(cfg, RunOptions::default(), tx, shutdown).await
}

/// [`run`] with explicit [`RunOptions`].
pub async fn run_with(
    cfg: ZkConfig,
    opts: RunOptions,
    tx: mpsc::Sender<DiscoveryEvent>,
    shutdown: watch::Receiver<bool>,
) -> Result<(), DiscoveryError> {
    let fallback = connect_string_members(&cfg.connect)?;
    let root = normalize_root(&cfg.services_root)?;
    if let Some(a) = &cfg.auth {
        if !a.contains(':') {
            return Err(DiscoveryError::Auth);
        }
    }
    let secure = Secure::new(cfg.tls.as_ref(), cfg.sasl.as_ref())?;
    let mut d = Discovery {
        cfg,
        secure,
        opts,
        root,
        fallback,
        tx,
        shutdown,
        known: BTreeMap::new(),
        said: None,
        said_root_missing: false,
    };
    match d.main_loop().await {
        Ok(()) | Err(Exit::Stop) => Ok(()),
        Err(Exit::Config(e)) => Err(e),
    }
}

/// Shutdown requested or nobody listens any more.
#[derive(Debug)]
struct Stop;

/// Why [`Discovery::main_loop`] ends.
enum Exit {
    Stop,
    Config(DiscoveryError),
}

impl From<Stop> for Exit {
    fn from(_: Stop) -> Exit {
        Exit::Stop
    }
}

/// What a znode is to discovery.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Known {
    Registered(Registration),
    Rejected(String),
}

/// Why a session ended.
enum SessionEnd {
    Expired,
    Failed(String),
}

/// Which watch a one-shot watcher is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Children,
    Data,
    Exists,
}

/// The one-shot watch that fired, forwarded from its watcher task.
type Note = (String, Kind);

struct Discovery {
    cfg: ZkConfig,
    /// TLS and SASL options, built from `cfg` once.
    secure: Secure,
    opts: RunOptions,
    root: String,
    fallback: Vec<EnsembleMember>,
    tx: mpsc::Sender<DiscoveryEvent>,
    shutdown: watch::Receiver<bool>,
    known: BTreeMap<String, Known>,
    /// Last connection problem said on stderr (said once per streak).
    said: Option<String>,
    /// "The root does not exist" was said (once until it exists).
    said_root_missing: bool,
}

/// The one-shot watches currently set (so a re-list does not pile up duplicates).
type Armed = HashSet<(String, Kind)>;

/// The watches of one session.
struct Watches {
    /// Following with one-shot watches (the strategy, or the server refused a persistent one).
    oneshot: bool,
    /// The persistent recursive watch on the root, while set. Held here, not in a task, so that
    /// it can be dropped before it is set again and is never polled after a terminal event.
    persistent: Option<zk::PersistentWatcher>,
    /// Where one-shot watcher tasks send what fired.
    ntx: mpsc::UnboundedSender<Note>,
    armed: Armed,
}

/// The next event of the persistent watch (never, without one).
async fn next_persistent(w: &mut Option<zk::PersistentWatcher>) -> zk::WatchedEvent {
    match w {
        Some(w) => w.changed().await,
        None => std::future::pending().await,
    }
}

/// Resolves once shutdown is requested (or its sender is gone).
pub(super) async fn shutdown_signal(rx: &mut watch::Receiver<bool>) {
    loop {
        if *rx.borrow_and_update() {
            return;
        }
        if rx.changed().await.is_err() {
            return;
        }
    }
}

/// A client for `cfg` (session timeout, digest auth, TLS and SASL as configured); fails
/// eagerly rather than retrying inside the client, so callers choose their back-off.
pub(super) async fn open_client(cfg: &ZkConfig, secure: &Secure) -> Result<zk::Client, zk::Error> {
    let mut c = zk::Client::connector()
        .with_session_timeout(Duration::from_millis(cfg.session_timeout_ms))
        .with_fail_eagerly();
    if let Some(auth) = &cfg.auth {
        c = c.with_auth("digest", auth.as_bytes());
    }
    secure.connect(secure.apply(c), &cfg.connect).await
}

/// Errors that mean "the connection or session is not usable now": the state watcher will say
/// what comes next, and a re-list follows every reconnect.
fn connection_error(e: &zk::Error) -> bool {
    matches!(
        e,
        zk::Error::ConnectionLoss
            | zk::Error::SessionExpired
            | zk::Error::SessionMoved
            | zk::Error::ClientClosed
            | zk::Error::Timeout
            | zk::Error::AuthFailed
            | zk::Error::NoHosts
    )
}

/// `d` plus up to a quarter of it, from the clock's nanoseconds (no need for a real RNG).
pub(super) fn jitter(d: Duration) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|t| t.subsec_nanos())
        .unwrap_or(0);
    d + d.mul_f64(f64::from(nanos % 1000) / 4000.0)
}

impl Discovery {
    async fn main_loop(&mut self) -> Result<(), Exit> {
        let mut backoff = self.opts.backoff_min;
        loop {
            if *self.shutdown.borrow() {
                return Err(Exit::Stop);
            }
            let client = match self.connect().await? {
                Ok(c) => c,
                Err(zk::Error::BadArguments(reason)) => {
                    return Err(Exit::Config(DiscoveryError::Connect {
                        connect: self.cfg.connect.clone(),
                        reason: (*reason).to_string(),
                    }))
                }
                Err(e) => {
                    let wait = jitter(backoff);
                    // The client does not say why a TLS handshake failed.
                    let hint = match (&e, self.secure.tls()) {
                        (zk::Error::NoHosts, true) => " (TLS: is it the secureClientPort, does the CA sign the servers' certificates, do they name the host as the connect string does, and does the server require a client certificate?)",
                        (zk::Error::AuthFailed, _) if self.cfg.sasl.is_some() => " (SASL: check the user and password)",
                        _ => "",
                    };
                    self.say(format!(
                        "cannot connect to {}: {e}{hint}; retrying (every {:.1} s at most)",
                        self.cfg.connect,
                        self.opts.backoff_max.as_secs_f64()
                    ));
                    self.sleep(wait).await?;
                    backoff = (backoff * 2).min(self.opts.backoff_max);
                    continue;
                }
            };
            backoff = self.opts.backoff_min;
            self.said = None;
            let session = client.session_id().0 as u64;
            let end = self.serve(&client, session).await;
            drop(client);
            match end? {
                SessionEnd::Expired => {
                    eprintln!("zklens discovery: session {session:#x} expired; starting a new one");
                    self.emit(DiscoveryEvent::Expired { session }).await?;
                }
                SessionEnd::Failed(reason) => {
                    self.say(format!(
                        "session {session:#x} ended: {reason}; reconnecting"
                    ));
                    self.sleep(jitter(backoff)).await?;
                    backoff = (backoff * 2).min(self.opts.backoff_max);
                }
            }
        }
    }

    /// Says a connection problem on stderr, once per streak of the same message.
    fn say(&mut self, msg: String) {
        let key: String = msg.chars().take_while(|&c| c != ';').collect();
        if self.said.as_deref() != Some(key.as_str()) {
            eprintln!("zklens discovery: {msg}");
            self.said = Some(key);
        }
    }

    async fn connect(&self) -> Result<Result<zk::Client, zk::Error>, Stop> {
        let mut sd = self.shutdown.clone();
        tokio::select! {
            r = open_client(&self.cfg, &self.secure) => Ok(r),
            _ = shutdown_signal(&mut sd) => Err(Stop),
        }
    }

    async fn sleep(&self, d: Duration) -> Result<(), Stop> {
        let mut sd = self.shutdown.clone();
        tokio::select! {
            _ = tokio::time::sleep(d) => Ok(()),
            _ = shutdown_signal(&mut sd) => Err(Stop),
        }
    }

    async fn emit(&self, ev: DiscoveryEvent) -> Result<(), Stop> {
        let mut sd = self.shutdown.clone();
        tokio::select! {
            r = self.tx.send(ev) => r.map_err(|_| Stop),
            _ = shutdown_signal(&mut sd) => Err(Stop),
        }
    }

    /// One session: from connected to expired (or failed).
    async fn serve(&mut self, client: &zk::Client, session: u64) -> Result<SessionEnd, Exit> {
        let mut state = client.state_watcher();
        let (ntx, mut nrx) = mpsc::unbounded_channel::<Note>();
        let mut w = Watches {
            oneshot: self.opts.strategy == WatchStrategy::OneShot,
            persistent: None,
            ntx,
            armed: Armed::new(),
        };
        self.emit(DiscoveryEvent::Connected { session }).await?;
        self.report_ensemble(client).await?;
        self.sync(client, &mut w).await?;
        loop {
            let mut sd = self.shutdown.clone();
            tokio::select! {
                _ = shutdown_signal(&mut sd) => return Err(Exit::Stop),
                st = state.changed() => match st {
                    zk::SessionState::Disconnected => {
                        self.emit(DiscoveryEvent::Disconnected).await?;
                    }
                    zk::SessionState::SyncConnected | zk::SessionState::ConnectedReadOnly => {
                        self.emit(DiscoveryEvent::Connected { session }).await?;
                        self.report_ensemble(client).await?;
                        self.sync(client, &mut w).await?;
                    }
                    zk::SessionState::Expired => return Ok(SessionEnd::Expired),
                    zk::SessionState::AuthFailed => {
                        return Ok(SessionEnd::Failed("authentication failed".into()))
                    }
                    zk::SessionState::Closed => {
                        return Ok(SessionEnd::Failed("the client was closed".into()))
                    }
                },
                ev = next_persistent(&mut w.persistent) => {
                    if ev.event_type == zk::EventType::Session {
                        if ev.session_state.is_terminated() {
                            // Polling it again would panic; the state watcher says the rest.
                            w.persistent = None;
                        }
                    } else {
                        self.on_node_event(client, ev).await?;
                    }
                }
                Some(key) = nrx.recv() => {
                    // That one-shot watch is spent; re-list once for everything queued.
                    w.armed.remove(&key);
                    while let Ok(more) = nrx.try_recv() {
                        w.armed.remove(&more);
                    }
                    self.sync(client, &mut w).await?;
                }
            }
        }
    }

    /// Reads `/zookeeper/config` (else the connect string) and reports the ensemble. Skipped
    /// when the connection is lost meanwhile (the reconnect reports it).
    async fn report_ensemble(&self, client: &zk::Client) -> Result<(), Stop> {
        let members = match client.get_config().await {
            Ok((data, _)) => parse_config(&data),
            Err(e) if connection_error(&e) => return Ok(()),
            Err(_) => Vec::new(),
        };
        let members = if members.is_empty() {
            self.fallback.clone()
        } else {
            members
        };
        self.emit(DiscoveryEvent::Ensemble(members)).await
    }

    /// Sets the watches, lists the tree and reports the differences. A listing interrupted by
    /// a connection problem reports nothing (the reconnect re-lists).
    ///
    /// The persistent watch is set anew each time (after every reconnect): zookeeper-client
    /// 0.11.2 re-sends only one-shot watches when it reconnects (`resend_watches` never picks
    /// `SetWatches2`), so a persistent watch would otherwise be gone after the first reconnect.
    /// The old watcher is dropped first so that the library keeps one watcher, not a pile.
    async fn sync(&mut self, client: &zk::Client, w: &mut Watches) -> Result<(), Stop> {
        if !w.oneshot {
            drop(w.persistent.take());
            match client
                .watch(&self.root, zk::AddWatchMode::PersistentRecursive)
                .await
            {
                Ok(pw) => w.persistent = Some(pw),
                Err(e) if connection_error(&e) => return Ok(()),
                Err(e) => {
                    eprintln!(
                        "zklens discovery: the server refuses a persistent recursive watch on {} \
                         ({e}); following it with one-shot watches",
                        self.root
                    );
                    w.oneshot = true;
                }
            }
        }
        let arm = w.oneshot.then_some((&w.ntx, &mut w.armed));
        let listed = match self.list(client, arm).await {
            Ok(l) => l,
            Err(e) => {
                if !connection_error(&e) {
                    eprintln!("zklens discovery: listing {} failed: {e}", self.root);
                }
                return Ok(());
            }
        };
        let gone: Vec<String> = self
            .known
            .keys()
            .filter(|k| !listed.contains_key(*k))
            .cloned()
            .collect();
        for znode in gone {
            self.apply(&znode, None).await?;
        }
        for (znode, k) in listed {
            self.apply(&znode, Some(k)).await?;
        }
        Ok(())
    }

    /// Lists every candidate znode under the root. With `arm`, sets the one-shot watches not set
    /// yet (exists on the root, children on every znode with children, data on the others).
    async fn list(
        &mut self,
        client: &zk::Client,
        mut arm: Option<(&mpsc::UnboundedSender<Note>, &mut Armed)>,
    ) -> Result<BTreeMap<String, Known>, zk::Error> {
        let mut out = BTreeMap::new();
        let root = self.root.clone();
        if let Some((ntx, armed)) = arm.as_mut() {
            let key = (root.clone(), Kind::Exists);
            if !armed.contains(&key) {
                let (stat, w) = client.check_and_watch_stat(&root).await?;
                forward_oneshot(w, key.clone(), ntx);
                armed.insert(key);
                if stat.is_none() {
                    self.root_missing();
                    return Ok(out);
                }
            }
        }
        let mut stack = vec![(root.clone(), 0usize)];
        let mut visited = 0usize;
        while let Some((dir, depth)) = stack.pop() {
            let children = match self.children(client, &dir, arm.as_mut()).await {
                Ok(c) => c,
                Err(zk::Error::NoNode) => {
                    if dir == root {
                        self.root_missing();
                    }
                    continue;
                }
                Err(e) => return Err(e),
            };
            if dir == root {
                self.said_root_missing = false;
            }
            for c in children {
                let path = join(&dir, &c);
                if !under_root(&root, &path) {
                    continue;
                }
                visited += 1;
                if visited > MAX_NODES {
                    eprintln!(
                        "zklens discovery: more than {MAX_NODES} znodes under {root}; \
                         ignoring the rest"
                    );
                    return Ok(out);
                }
                let (data, stat) = match self.data(client, &path, arm.as_mut()).await {
                    Ok(d) => d,
                    Err(zk::Error::NoNode) => continue,
                    Err(zk::Error::NoAuth) => {
                        out.insert(path, no_auth());
                        continue;
                    }
                    Err(e) => return Err(e),
                };
                if let Some(k) = classify(&path, &data, &stat, self.cfg.max_data) {
                    out.insert(path.clone(), k);
                }
                // One-shot watches need a child watch on every znode, empty ones included:
                // a service directory whose last instance left must see the next one come.
                if (stat.num_children > 0 || arm.is_some()) && depth + 1 < MAX_DEPTH {
                    stack.push((path, depth + 1));
                }
            }
        }
        Ok(out)
    }

    fn root_missing(&mut self) {
        if !self.said_root_missing {
            eprintln!(
                "zklens discovery: the services root {} does not exist (yet); waiting for it",
                self.root
            );
            self.said_root_missing = true;
        }
    }

    async fn children(
        &self,
        client: &zk::Client,
        path: &str,
        arm: Option<&mut (&mpsc::UnboundedSender<Note>, &mut Armed)>,
    ) -> Result<Vec<String>, zk::Error> {
        if let Some((ntx, armed)) = arm {
            let key = (path.to_string(), Kind::Children);
            if !armed.contains(&key) {
                let (children, w) = client.list_and_watch_children(path).await?;
                forward_oneshot(w, key.clone(), ntx);
                armed.insert(key);
                return Ok(children);
            }
        }
        client.list_children(path).await
    }

    async fn data(
        &self,
        client: &zk::Client,
        path: &str,
        arm: Option<&mut (&mpsc::UnboundedSender<Note>, &mut Armed)>,
    ) -> Result<(Vec<u8>, zk::Stat), zk::Error> {
        if let Some((ntx, armed)) = arm {
            let key = (path.to_string(), Kind::Data);
            if !armed.contains(&key) {
                let (data, stat, w) = client.get_and_watch_data(path).await?;
                forward_oneshot(w, key.clone(), ntx);
                armed.insert(key);
                return Ok((data, stat));
            }
        }
        client.get_data(path).await
    }

    /// A node event of the persistent recursive watch.
    async fn on_node_event(
        &mut self,
        client: &zk::Client,
        ev: zk::WatchedEvent,
    ) -> Result<(), Stop> {
        let path = ev.path.as_str();
        if !under_root(&self.root, path) || depth(&self.root, path) > MAX_DEPTH {
            return Ok(());
        }
        match ev.event_type {
            zk::EventType::NodeCreated | zk::EventType::NodeDataChanged => {
                self.reevaluate(client, path).await?;
            }
            zk::EventType::NodeDeleted => self.apply(path, None).await?,
            _ => return Ok(()),
        }
        if ev.event_type != zk::EventType::NodeDataChanged {
            // A znode gaining or losing its last child may become or stop being a directory.
            if let Some(parent) = parent(path) {
                if under_root(&self.root, parent) {
                    self.reevaluate(client, parent).await?;
                }
            }
        }
        Ok(())
    }

    /// Reads one znode again and reports what changed. Connection problems are left to the
    /// re-list after the reconnect.
    async fn reevaluate(&mut self, client: &zk::Client, path: &str) -> Result<(), Stop> {
        let k = match client.get_data(path).await {
            Ok((data, stat)) => classify(path, &data, &stat, self.cfg.max_data),
            Err(zk::Error::NoNode) => None,
            Err(zk::Error::NoAuth) => Some(no_auth()),
            Err(e) => {
                if !connection_error(&e) {
                    eprintln!("zklens discovery: reading {path} failed: {e}");
                }
                return Ok(());
            }
        };
        self.apply(path, k).await
    }

    /// Records what `znode` is now and reports it when that differs from what was known.
    async fn apply(&mut self, znode: &str, now: Option<Known>) -> Result<(), Stop> {
        if self.known.get(znode) == now.as_ref() {
            return Ok(());
        }
        let ev = match now {
            Some(k) => {
                self.known.insert(znode.to_string(), k.clone());
                match k {
                    Known::Registered(r) => DiscoveryEvent::Registered(r),
                    Known::Rejected(reason) => {
                        eprintln!("zklens discovery: rejected registration {znode}: {reason}");
                        DiscoveryEvent::Rejected {
                            znode: znode.to_string(),
                            reason,
                        }
                    }
                }
            }
            None => {
                self.known.remove(znode);
                DiscoveryEvent::Unregistered {
                    znode: znode.to_string(),
                }
            }
        };
        self.emit(ev).await
    }
}

fn no_auth() -> Known {
    Known::Rejected("not readable: the znode's ACL denies this client".into())
}

/// What a znode with this data and stat is: empty data, or data that is no registration on a
/// znode with children (a directory), is nothing.
fn classify(path: &str, data: &[u8], stat: &zk::Stat, max_data: usize) -> Option<Known> {
    if data.is_empty() {
        return None;
    }
    let owner = u64::try_from(stat.ephemeral_owner).ok().filter(|&o| o != 0);
    match registration::parse(path, data, max_data, owner) {
        Ok(r) => Some(Known::Registered(r)),
        Err(_) if stat.num_children > 0 => None,
        Err(e) => Some(Known::Rejected(reason(&e))),
    }
}

fn reason(e: &RegistrationError) -> String {
    e.to_string()
}

fn forward_oneshot(w: zk::OneshotWatcher, key: (String, Kind), ntx: &mpsc::UnboundedSender<Note>) {
    let ntx = ntx.clone();
    tokio::spawn(async move {
        // Fires once: a node event, or the session's end (then nobody listens any more).
        let _ = w.changed().await;
        let _ = ntx.send(key);
    });
}

fn join(dir: &str, child: &str) -> String {
    if dir == "/" {
        format!("/{child}")
    } else {
        format!("{dir}/{child}")
    }
}

fn parent(path: &str) -> Option<&str> {
    match path.rfind('/') {
        Some(0) if path.len() > 1 => Some("/"),
        Some(0) | None => None,
        Some(i) => Some(&path[..i]),
    }
}

/// Strictly below the root (and, for the root `/`, not ZooKeeper's own `/zookeeper`).
fn under_root(root: &str, path: &str) -> bool {
    if root == "/" {
        path.len() > 1 && path != "/zookeeper" && !path.starts_with("/zookeeper/")
    } else {
        path.len() > root.len() + 1 && path.starts_with(root) && path.as_bytes()[root.len()] == b'/'
    }
}

/// Levels below the root (`/services/a/b` under `/services`: 2).
fn depth(root: &str, path: &str) -> usize {
    let rest = if root == "/" {
        path
    } else {
        path.get(root.len()..).unwrap_or("")
    };
    rest.split('/').filter(|p| !p.is_empty()).count()
}

fn normalize_root(root: &str) -> Result<String, DiscoveryError> {
    let bad = || DiscoveryError::Root(root.to_string());
    if !root.starts_with('/') {
        return Err(bad());
    }
    let r = if root.len() > 1 {
        root.trim_end_matches('/')
    } else {
        root
    };
    if r.is_empty() {
        return Ok("/".into());
    }
    if r.len() > 1
        && r[1..]
            .split('/')
            .any(|c| c.is_empty() || c == "." || c == "..")
    {
        return Err(bad());
    }
    if r.chars().any(char::is_control) {
        return Err(bad());
    }
    Ok(r.to_string())
}

/// The members named by `/zookeeper/config`: `server.N=host:quorum:election[:role][;[addr:]port]`
/// lines (others, like `version=`, are skipped). Without a client part the port is unknown.
pub fn parse_config(data: &[u8]) -> Vec<EnsembleMember> {
    let text = String::from_utf8_lossy(data);
    let mut out = Vec::new();
    for line in text.lines() {
        let Some((key, value)) = line.trim().split_once('=') else {
            continue;
        };
        let Some(id) = key
            .trim()
            .strip_prefix("server.")
            .and_then(|n| n.parse::<u64>().ok())
        else {
            continue;
        };
        let (server, client) = match value.split_once(';') {
            Some((s, c)) => (s.trim(), Some(c.trim())),
            None => (value.trim(), None),
        };
        let host = if let Some(rest) = server.strip_prefix('[') {
            rest.split(']').next().unwrap_or_default()
        } else {
            server.split(':').next().unwrap_or_default()
        };
        if host.is_empty() {
            continue;
        }
        let client_port = client.and_then(|c| {
            let port = c.rsplit_once(':').map_or(c, |(_, p)| p);
            port.parse::<u16>().ok()
        });
        out.push(EnsembleMember {
            id: Some(id),
            host: host.to_string(),
            client_port,
        });
    }
    out.sort_by_key(|m| m.id);
    out
}

/// The hosts of a connect string (`host[:port],...[/chroot]`, `tcp://` and `tcp+tls://`
/// prefixes allowed, port 2181 by default).
pub fn connect_string_members(connect: &str) -> Result<Vec<EnsembleMember>, DiscoveryError> {
    let bad = |reason: String| DiscoveryError::Connect {
        connect: connect.to_string(),
        reason,
    };
    let mut out = Vec::new();
    for item in connect.split(',') {
        let item = item.trim();
        let item = item
            .strip_prefix("tcp://")
            .or_else(|| item.strip_prefix("tcp+tls://"))
            .unwrap_or(item);
        let hostport = item.split('/').next().unwrap_or_default();
        if hostport.is_empty() {
            return Err(bad("an empty host".into()));
        }
        let (host, port) = if let Some(rest) = hostport.strip_prefix('[') {
            let Some((h, tail)) = rest.split_once(']') else {
                return Err(bad(format!("{hostport:?}: no closing ]")));
            };
            (h, tail.strip_prefix(':'))
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (hostport, None),
            }
        };
        let port = match port {
            None => 2181,
            Some(p) => match p.parse::<u16>() {
                Ok(p) if p > 0 => p,
                _ => return Err(bad(format!("{hostport:?}: bad port"))),
            },
        };
        if host.is_empty() {
            return Err(bad(format!("{hostport:?}: no host")));
        }
        out.push(EnsembleMember {
            id: None,
            host: host.to_string(),
            client_port: Some(port),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_node() {
        let cfg = b"server.2=127.0.0.1:24912:25012:participant;0.0.0.0:24812\n\
                    server.1=[::1]:2888:3888:participant;[::1]:2181\n\
                    server.3=zk3:2888:3888\nversion=100000000\n";
        assert_eq!(
            parse_config(cfg),
            vec![
                EnsembleMember {
                    id: Some(1),
                    host: "::1".into(),
                    client_port: Some(2181)
                },
                EnsembleMember {
                    id: Some(2),
                    host: "127.0.0.1".into(),
                    client_port: Some(24812)
                },
                EnsembleMember {
                    id: Some(3),
                    host: "zk3".into(),
                    client_port: None
                },
            ]
        );
        assert!(parse_config(b"").is_empty());
        assert!(parse_config(b"\xff\x00garbage=1\nserver.x=y").is_empty());
    }

    #[test]
    fn connect_strings() {
        let m = connect_string_members("a:1,tcp://b,[::1]:3/chroot/x").unwrap();
        let hosts: Vec<_> = m.iter().map(|m| (m.host.as_str(), m.client_port)).collect();
        assert_eq!(
            hosts,
            vec![("a", Some(1)), ("b", Some(2181)), ("::1", Some(3))]
        );
        for bad in ["", "a:1,", "a:x", ":1", "[::1", "a:0"] {
            assert!(connect_string_members(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn roots_and_paths() {
        assert_eq!(normalize_root("/services/").unwrap(), "/services");
        assert_eq!(normalize_root("/").unwrap(), "/");
        for bad in ["services", "/a//b", "/a/../b", ""] {
            assert!(normalize_root(bad).is_err(), "{bad}");
        }
        assert!(under_root("/services", "/services/a"));
        assert!(!under_root("/services", "/services"));
        assert!(!under_root("/services", "/servicesx/a"));
        assert!(under_root("/", "/a"));
        assert!(!under_root("/", "/zookeeper/config"));
        assert_eq!(depth("/services", "/services/a/b"), 2);
        assert_eq!(depth("/", "/a/b"), 2);
        assert_eq!(parent("/services/a"), Some("/services"));
        assert_eq!(parent("/a"), Some("/"));
        assert_eq!(parent("/"), None);
        assert_eq!(join("/", "a"), "/a");
        assert_eq!(join("/s", "a"), "/s/a");
    }

    #[test]
    fn classify_directories_and_rejections() {
        let stat = |children: i32, owner: i64| zk::Stat {
            czxid: 1,
            mzxid: 1,
            pzxid: 1,
            ctime: 0,
            mtime: 0,
            version: 0,
            cversion: 0,
            aversion: 0,
            ephemeral_owner: owner,
            data_length: 0,
            num_children: children,
        };
        let reg = br#"{"logs":["file:///x"]}"#;
        assert!(classify("/s/a/b", b"", &stat(0, 0), 100).is_none());
        assert!(classify("/s/a", b"10.0.0.5", &stat(2, 0), 100).is_none());
        assert!(matches!(
            classify("/s/a", b"10.0.0.5", &stat(0, 0), 100),
            Some(Known::Rejected(_))
        ));
        match classify("/s/a/b", reg, &stat(0, 7), 100) {
            Some(Known::Registered(r)) => assert_eq!(r.session, Some(7)),
            other => panic!("{other:?}"),
        }
        match classify("/s/a/b", reg, &stat(0, 7), 5) {
            Some(Known::Rejected(r)) => assert!(r.contains("limit"), "{r}"),
            other => panic!("{other:?}"),
        }
    }
}
