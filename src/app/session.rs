//! A session's life, assembled from the events that name it: when and by which server it was
//! created (the `createSession` txn and the id's top byte), the ephemerals it created, where the
//! client saw it connect and disconnect, and how it ended (`closeSession` txn: expired or closed,
//! with the ephemerals that went with it).

use std::fmt;

use crate::event::{hex_id, session_origin, Event};
use crate::time::short;

/// What the events say about one session.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Lifecycle {
    /// The session id.
    pub session: u64,
    /// (time, zxid, negotiated timeout ms) of its `createSession` txn.
    pub created: Option<(i64, u64, Option<u64>)>,
    /// Ephemeral znodes it created: (time, zxid, path).
    pub ephemerals: Vec<(i64, u64, String)>,
    /// Client-side connections seen: (time, node, server it reached).
    pub connections: Vec<(i64, String, Option<String>)>,
    /// Disconnects seen by the client: (time, node).
    pub disconnects: Vec<(i64, String)>,
    /// The leader line that expired it: (time, node).
    pub expired_by: Option<(i64, String)>,
    /// (time, zxid, expired?, ephemerals deleted) of its `closeSession` txn.
    pub closed: Option<(i64, u64, bool, Vec<String>)>,
    /// The client noticed the expiry: (time, node).
    pub client_saw_expiry: Option<(i64, String)>,
}

/// Builds the lifecycle of `session` from events in time order.
pub fn lifecycle(session: u64, events: &[Event]) -> Lifecycle {
    let mut l = Lifecycle {
        session,
        ..Lifecycle::default()
    };
    for e in events.iter().filter(|e| e.attrs.session == Some(session)) {
        let ts = e.ts.unwrap_or(0);
        let z = e.attrs.zxid.unwrap_or(0);
        match &*e.kind {
            "txn.createSession" => l.created = Some((ts, z, e.attrs.timeout_ms)),
            "txn.create" | "txn.create2" if e.attrs.state.as_deref() == Some("ephemeral") => {
                if let Some(p) = &e.attrs.path {
                    l.ephemerals.push((ts, z, p.clone()));
                }
            }
            "txn.closeSession" => {
                let expired = e.attrs.state.as_deref() == Some("expired");
                l.closed = Some((ts, z, expired, e.paths.clone()));
            }
            "session.expired" if l.expired_by.is_none() => {
                l.expired_by = Some((ts, e.node.to_string()));
            }
            "client.connected" => {
                l.connections
                    .push((ts, e.node.to_string(), e.attrs.peer.clone()))
            }
            "client.disconnected" => l.disconnects.push((ts, e.node.to_string())),
            "client.session_expired" if l.client_saw_expiry.is_none() => {
                l.client_saw_expiry = Some((ts, e.node.to_string()));
            }
            _ => {}
        }
    }
    l
}

fn t(ns: i64) -> String {
    if ns == 0 {
        "?".into()
    } else {
        short(ns)
    }
}

impl fmt::Display for Lifecycle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "session {}: created by server {} (the id's top byte)",
            hex_id(self.session),
            session_origin(self.session)
        )?;
        match &self.created {
            Some((ts, z, timeout)) => writeln!(
                f,
                "  created   {}  createSession zxid {} (epoch {}), timeout {} ms",
                t(*ts),
                hex_id(*z),
                z >> 32,
                timeout.map(|x| x.to_string()).unwrap_or_else(|| "?".into())
            )?,
            None => writeln!(
                f,
                "  created   (no createSession txn in the index: ingest the servers' txn logs)"
            )?,
        }
        for (ts, z, p) in &self.ephemerals {
            writeln!(f, "  ephemeral {}  {} (zxid {})", t(*ts), p, hex_id(*z))?;
        }
        if !self.connections.is_empty() {
            let c: Vec<String> = self
                .connections
                .iter()
                .map(|(ts, n, s)| {
                    format!(
                        "{} {}{}",
                        t(*ts),
                        n,
                        s.as_ref().map(|s| format!(" -> {s}")).unwrap_or_default()
                    )
                })
                .collect();
            writeln!(f, "  connected {}", c.join("; "))?;
        }
        if !self.disconnects.is_empty() {
            writeln!(f, "  client disconnects: {}", self.disconnects.len())?;
        }
        if let Some((ts, n)) = &self.expired_by {
            writeln!(f, "  expired   {}  by {} (Expiring session)", t(*ts), n)?;
        }
        match &self.closed {
            Some((ts, z, expired, paths)) => writeln!(
                f,
                "  ended     {}  closeSession zxid {} ({}){}",
                t(*ts),
                hex_id(*z),
                if *expired {
                    "expired by the leader"
                } else {
                    "closed by the client"
                },
                if paths.is_empty() {
                    String::new()
                } else {
                    format!(", ephemerals deleted: {}", paths.join(", "))
                }
            )?,
            None => writeln!(f, "  ended     (no closeSession txn in the index)")?,
        }
        if let Some((ts, n)) = &self.client_saw_expiry {
            writeln!(
                f,
                "  client    {}  {} learned the session had expired",
                t(*ts),
                n
            )?;
        }
        Ok(())
    }
}
