//! Agents' membership: every `zklens agent` holds an ephemeral znode `/zklens/agents/<host>`
//! whose data says who it is ([`AgentInfo`]); `zklens serve` lists them ([`follow`]) to show
//! which agent covers which registration. An agent killed with `kill -9` is gone from the list
//! when its session expires.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch};
use zookeeper_client as zk;

use super::secure::Secure;
use super::watch::{jitter, open_client, shutdown_signal, DiscoveryError};
use super::ZkConfig;

/// Where agents register.
pub const ROOT: &str = "/zklens/agents";

/// Largest agent znode read (bytes); more is shown as unreadable.
const MAX_DATA: usize = 16 * 1024;

/// What an agent's znode says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentInfo {
    /// Its host identity (the znode's name).
    pub host: String,
    /// zklens version.
    #[serde(default)]
    pub version: String,
    /// Its health endpoint (`http://ADDR/health`; `/metrics` next to it).
    #[serde(default)]
    pub health: Option<String>,
    /// Other names of its host that registrations may use (its addresses).
    #[serde(default)]
    pub addresses: Vec<String>,
    /// When it started (RFC 3339).
    #[serde(default)]
    pub started: String,
    /// The session holding the znode (read from its `ephemeralOwner`; not written).
    #[serde(default, skip_deserializing)]
    pub session: Option<u64>,
    /// Why its data could not be read, when it could not (not written).
    #[serde(default, skip_deserializing, skip_serializing_if = "Option::is_none")]
    pub unreadable: Option<String>,
}

impl AgentInfo {
    /// Whether a registration's `host` is this agent's (its name or one of its addresses).
    pub fn covers(&self, host: &str) -> bool {
        let h = host.trim();
        self.host.eq_ignore_ascii_case(h) || self.addresses.iter().any(|a| a == h)
    }
}

/// The znode of the agent named `host`; `Err` when the name cannot be a znode name.
pub fn path_of(host: &str) -> Result<String, DiscoveryError> {
    let ok = !host.is_empty()
        && host.len() <= 255
        && host != "."
        && host != ".."
        && host != "zookeeper"
        && !host.chars().any(|c| c == '/' || c.is_control());
    if ok {
        Ok(format!("{ROOT}/{host}"))
    } else {
        Err(DiscoveryError::Connect {
            connect: host.to_string(),
            reason: "an agent's host name must be a znode name (no '/', not empty)".into(),
        })
    }
}

/// A connected client, retrying with a growing `backoff` until one connects (`Ok(None)`: shut
/// down meanwhile). Only a connect string that cannot work is an error; other failures are
/// said once per streak, as `what`.
async fn connect(
    cfg: &ZkConfig,
    secure: &Secure,
    backoff: &mut Duration,
    shutdown: &mut watch::Receiver<bool>,
    what: &str,
) -> Result<Option<zk::Client>, DiscoveryError> {
    let mut said = false;
    loop {
        let r = tokio::select! {
            r = open_client(cfg, secure) => r,
            _ = shutdown_signal(shutdown) => return Ok(None),
        };
        match r {
            Ok(c) => {
                *backoff = Duration::from_millis(250);
                return Ok(Some(c));
            }
            Err(zk::Error::BadArguments(reason)) => {
                return Err(DiscoveryError::Connect {
                    connect: cfg.connect.clone(),
                    reason: (*reason).to_string(),
                })
            }
            Err(e) => {
                if !said {
                    eprintln!(
                        "zklens: {what}: cannot connect to {}: {e}; retrying",
                        cfg.connect
                    );
                    said = true;
                }
                tokio::select! {
                    _ = tokio::time::sleep(jitter(*backoff)) => {}
                    _ = shutdown_signal(shutdown) => return Ok(None),
                }
                *backoff = (*backoff * 2).min(Duration::from_secs(8));
            }
        }
    }
}

/// Creates a persistent znode, and its parents, when missing.
async fn ensure(client: &zk::Client, path: &str) -> Result<(), zk::Error> {
    let opts = zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
    let mut at = String::new();
    for part in path.split('/').filter(|p| !p.is_empty()) {
        at.push('/');
        at.push_str(part);
        match client.create(&at, b"", &opts).await {
            Ok(_) | Err(zk::Error::NodeExists) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Holds `/zklens/agents/<info.host>` as an ephemeral znode until `shutdown`, then deletes it.
/// Recreates it in a new session after an expiry. When another session holds it (an earlier
/// run killed before its session expired, or a second agent with the same name), waits for it
/// to go and says so once. Connection trouble is retried; only a configuration that cannot work
/// is an error.
pub async fn hold(
    cfg: ZkConfig,
    info: AgentInfo,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), DiscoveryError> {
    let path = path_of(&info.host)?;
    let secure = Secure::new(cfg.tls.as_ref(), cfg.sasl.as_ref())?;
    let data = serde_json::to_vec(&info).unwrap_or_default();
    let mut backoff = Duration::from_millis(250);
    let mut said_held = false;
    loop {
        if *shutdown.borrow() {
            return Ok(());
        }
        let Some(client) =
            connect(&cfg, &secure, &mut backoff, &mut shutdown, "membership").await?
        else {
            return Ok(());
        };
        let session = client.session_id().0;
        let mut state = client.state_watcher();
        // Create the znode (waiting while another session holds it).
        let held = loop {
            if let Err(e) = ensure(&client, ROOT).await {
                break Err(e);
            }
            let opts = zk::CreateMode::Ephemeral.with_acls(zk::Acls::anyone_all());
            match client.create(&path, &data, &opts).await {
                Ok(_) => break Ok(()),
                Err(zk::Error::NodeExists) => match client.check_and_watch_stat(&path).await {
                    Ok((Some(st), _)) if st.ephemeral_owner == session => break Ok(()),
                    Ok((Some(st), w)) => {
                        if !said_held {
                            eprintln!(
                                "zklens agent: {path} is held by session {:#x} (an earlier run whose session has not expired yet, or another agent with this name); registering when it goes",
                                st.ephemeral_owner
                            );
                            said_held = true;
                        }
                        tokio::select! {
                            _ = w.changed() => {}
                            _ = state.changed() => {}
                            _ = shutdown_signal(&mut shutdown) => return Ok(()),
                        }
                        if state.peek_state().is_terminated() {
                            break Err(zk::Error::SessionExpired);
                        }
                    }
                    Ok((None, _)) => {}
                    Err(e) => break Err(e),
                },
                Err(e) => break Err(e),
            }
        };
        match held {
            Ok(()) => {
                eprintln!("zklens agent: registered as {path} (session {session:#x})");
                said_held = false;
            }
            Err(e) => {
                eprintln!("zklens agent: membership: {path}: {e}; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(jitter(backoff)) => {}
                    _ = shutdown_signal(&mut shutdown) => return Ok(()),
                }
                continue;
            }
        }
        // Hold it until shutdown (delete it) or the session ends (register again).
        loop {
            tokio::select! {
                st = state.changed() => {
                    if st.is_terminated() {
                        eprintln!("zklens agent: membership session {session:#x} ended ({st:?}); registering again");
                        break;
                    }
                }
                _ = shutdown_signal(&mut shutdown) => {
                    let _ = tokio::time::timeout(Duration::from_secs(2), client.delete(&path, None)).await;
                    return Ok(());
                }
            }
        }
    }
}

/// Lists the agents under [`ROOT`] at every change (and after every reconnect), sending the
/// whole list each time, until `shutdown` or `tx`'s receiver is dropped.
pub async fn follow(
    cfg: ZkConfig,
    tx: mpsc::Sender<Vec<AgentInfo>>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), DiscoveryError> {
    let secure = Secure::new(cfg.tls.as_ref(), cfg.sasl.as_ref())?;
    let mut backoff = Duration::from_millis(250);
    loop {
        if *shutdown.borrow() {
            return Ok(());
        }
        let Some(client) = connect(&cfg, &secure, &mut backoff, &mut shutdown, "agents").await?
        else {
            return Ok(());
        };
        let mut state = client.state_watcher();
        loop {
            let listed = match client.list_and_watch_children(ROOT).await {
                Ok((children, w)) => {
                    let mut agents = Vec::with_capacity(children.len());
                    for c in children {
                        agents.push(read(&client, &c).await);
                    }
                    agents.sort_by(|a, b| a.host.cmp(&b.host));
                    Ok((agents, w))
                }
                // No agent ever registered: wait for the root to appear.
                Err(zk::Error::NoNode) => match client.check_and_watch_stat(ROOT).await {
                    Ok((_, w)) => Ok((Vec::new(), w)),
                    Err(e) => Err(e),
                },
                Err(e) => Err(e),
            };
            let (agents, w) = match listed {
                Ok(x) => x,
                Err(_) => {
                    // Lost the connection or the session: the state watcher says which.
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                        _ = shutdown_signal(&mut shutdown) => return Ok(()),
                    }
                    if state.peek_state().is_terminated() {
                        break;
                    }
                    continue;
                }
            };
            if tx.send(agents).await.is_err() {
                return Ok(());
            }
            tokio::select! {
                _ = w.changed() => {}
                st = state.changed() => {
                    if st.is_terminated() {
                        break;
                    }
                }
                _ = shutdown_signal(&mut shutdown) => return Ok(()),
            }
        }
    }
}

/// One agent's znode.
async fn read(client: &zk::Client, host: &str) -> AgentInfo {
    let path = format!("{ROOT}/{host}");
    let blank = |why: String| AgentInfo {
        host: host.to_string(),
        version: String::new(),
        health: None,
        addresses: Vec::new(),
        started: String::new(),
        session: None,
        unreadable: Some(why),
    };
    match client.get_data(&path).await {
        Ok((data, stat)) => {
            let mut info = if data.len() > MAX_DATA {
                blank(format!(
                    "{} bytes of data (at most {MAX_DATA} are read)",
                    data.len()
                ))
            } else {
                match serde_json::from_slice::<AgentInfo>(&data) {
                    Ok(i) => i,
                    Err(e) => blank(format!("not an agent's data: {e}")),
                }
            };
            info.host = host.to_string();
            info.session = (stat.ephemeral_owner != 0).then_some(stat.ephemeral_owner as u64);
            info
        }
        Err(e) => blank(e.to_string()),
    }
}
