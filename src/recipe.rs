//! Leader-election and lock recipes read from ZooKeeper's own record: who held each recipe
//! parent, from which zxid and time, until when, and why it ended.
//!
//! Every recipe people use (Curator's `LeaderLatch`, `LeaderSelector` and `InterProcessMutex`,
//! kazoo's `Election` and `Lock`, plain sequential children) works the same way: a candidate
//! creates an ephemeral sequential znode under a parent, the lowest sequence number holds, and
//! when that znode goes — deleted, or its session closed or expired — the next lowest takes over.
//! The committed transactions (`txn.create`, `txn.delete`, `txn.closeSession` events from the txn
//! logs) record all of it exactly, whatever the services log. The naming schemes are data
//! (`queries/recipes.toml`).

use std::collections::{BTreeMap, HashMap};

use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::event::Event;

/// The shipped schemes (`queries/recipes.toml`).
pub const EMBEDDED: &str = include_str!("../queries/recipes.toml");

/// A naming scheme as written in TOML.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct SchemeDef {
    name: String,
    #[serde(default)]
    note: String,
    child: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    scheme: Vec<SchemeDef>,
}

/// A compiled naming scheme.
#[derive(Debug, Clone)]
pub struct Scheme {
    /// Its name (`kazoo-lock`).
    pub name: String,
    /// What it recognises.
    pub note: String,
    child: Regex,
}

/// Compiles the schemes of a `recipes.toml` text; `origin` names it in errors.
pub fn schemes(origin: &str, text: &str) -> Result<Vec<Scheme>> {
    let bad = |reason: String| Error::Format {
        origin: origin.to_string(),
        reason,
    };
    let f: File = toml::from_str(text).map_err(|e| bad(e.to_string()))?;
    f.scheme
        .into_iter()
        .map(|d| {
            let child = Regex::new(&d.child).map_err(|e| bad(format!("{}: {e}", d.name)))?;
            if !child.capture_names().any(|n| n == Some("seq")) {
                return Err(bad(format!(
                    "{}: the child regex needs a (?P<seq>...) group",
                    d.name
                )));
            }
            Ok(Scheme {
                name: d.name,
                note: d.note,
                child,
            })
        })
        .collect()
}

/// Why a holding ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum End {
    /// The holder's session expired (a `closeSession` the server issued).
    SessionExpired,
    /// The holder's session was closed by its client.
    SessionClosed,
    /// The holder's znode was deleted (it gave the role up).
    NodeDeleted,
}

/// One holder's time at the head of a recipe parent. In JSON, ids are `0x…` hex and times
/// RFC 3339, as everywhere else.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holding {
    /// The instance: the data written in its znode, else its session's other (registration)
    /// znode's name, else the session id.
    pub holder: String,
    /// Its session.
    #[serde(with = "hex")]
    pub session: u64,
    /// Its znode.
    pub znode: String,
    /// The zxid from which it held (its create, or the removal that made it the lowest).
    #[serde(with = "hex")]
    pub from_zxid: u64,
    /// The time of that transaction (ns since the epoch).
    #[serde(rename = "from", with = "time")]
    pub from_ts: i64,
    /// The zxid at which it stopped holding, if it did in the record read.
    #[serde(with = "opt_hex")]
    pub until_zxid: Option<u64>,
    /// The time of that transaction.
    #[serde(rename = "until", with = "opt_time")]
    pub until_ts: Option<i64>,
    /// Why it stopped.
    pub ended: Option<End>,
}

/// `0x…` hex ids in JSON.
mod hex {
    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &u64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&crate::event::hex_id(*v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        let t = String::deserialize(d)?;
        crate::event::parse_id(&t).ok_or_else(|| D::Error::custom(format!("not an id: {t:?}")))
    }
}

/// Optional `0x…` hex ids.
mod opt_hex {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<u64>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => crate::recipe::hex::serialize(v, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        let t: Option<String> = Option::deserialize(d)?;
        t.map(|t| {
            crate::event::parse_id(&t)
                .ok_or_else(|| serde::de::Error::custom(format!("not an id: {t:?}")))
        })
        .transpose()
    }
}

/// RFC 3339 times in JSON.
mod time {
    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &i64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&crate::time::rfc3339(*v))
    }

    pub fn parse<E: Error>(t: &str) -> Result<i64, E> {
        chrono::DateTime::parse_from_rfc3339(t)
            .ok()
            .and_then(|d| d.timestamp_nanos_opt())
            .ok_or_else(|| E::custom(format!("not an RFC 3339 time: {t:?}")))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
        parse(&String::deserialize(d)?)
    }
}

/// Optional RFC 3339 times.
mod opt_time {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => crate::recipe::time::serialize(v, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
        let t: Option<String> = Option::deserialize(d)?;
        t.map(|t| crate::recipe::time::parse(&t)).transpose()
    }
}

/// The holders of one recipe parent, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timeline {
    /// The parent znode (`/election/calc`).
    pub parent: String,
    /// The naming scheme of its children.
    pub scheme: String,
    /// Who held it, in order.
    pub holdings: Vec<Holding>,
}

/// A candidate znode still alive.
#[derive(Debug, Clone)]
struct Candidate {
    seq: u64,
    znode: String,
    session: u64,
    data: Option<String>,
}

#[derive(Debug, Default)]
struct Parent {
    scheme: String,
    live: Vec<Candidate>,
    /// The current holder's znode, and where its holding is in `holdings`.
    head: Option<(String, usize)>,
    holdings: Vec<(Holding, Option<String>)>,
}

/// The data a `create` wrote, from the transaction's line (`create /path,DATA,[acl...`): short
/// printable text only.
fn created_data<'a>(message: &'a str, path: &str) -> Option<&'a str> {
    let at = message.find(&format!("create {path},"))? + "create ".len() + path.len() + 1;
    let rest = &message[at..];
    let end = rest.rfind(",[").or_else(|| rest.rfind(",v{"))?;
    let data = rest[..end].trim();
    (!data.is_empty()
        && data.len() <= 128
        && data.chars().all(|c| !c.is_control())
        && !data.starts_with('#'))
    .then_some(data)
}

/// The kinds of the events [`timelines`] reads.
pub const NEEDS: &[&str] = &["txn.create", "txn.delete", "txn.closeSession"];

/// Rebuilds every recipe parent's holder timeline from the transactions among `events` (in zxid
/// order; other events are ignored).
pub fn timelines(events: &[Event], schemes: &[Scheme]) -> Vec<Timeline> {
    let mut txns: Vec<&Event> = events
        .iter()
        .filter(|e| e.kind.starts_with("txn.") && e.attrs.zxid.is_some())
        .collect();
    txns.sort_by_key(|e| e.attrs.zxid);
    let mut parents: BTreeMap<String, Parent> = BTreeMap::new();
    // A session's other ephemerals (its registration): the first one's name.
    let mut registered: HashMap<u64, String> = HashMap::new();
    // Where each candidate znode lives.
    let mut owner: HashMap<String, String> = HashMap::new();
    for e in txns {
        let zxid = e.attrs.zxid.unwrap_or(0);
        let ts = e.ts.unwrap_or(0);
        let session = e.attrs.session.unwrap_or(0);
        let mut touched: Vec<(String, Option<(String, End)>)> = Vec::new();
        match &*e.kind {
            "txn.create" | "txn.create2" if e.attrs.state.as_deref() == Some("ephemeral") => {
                let Some(path) = e.attrs.path.as_deref() else {
                    continue;
                };
                let (parent, child) = match path.rsplit_once('/') {
                    Some((p, c)) if !p.is_empty() => (p, c),
                    _ => continue,
                };
                let found = schemes.iter().find_map(|s| {
                    let c = s.child.captures(child)?;
                    let seq = c.name("seq")?.as_str().parse::<u64>().ok()?;
                    Some((s, seq))
                });
                match found {
                    Some((s, seq)) => {
                        let p = parents.entry(parent.to_string()).or_default();
                        if p.scheme.is_empty() {
                            p.scheme = s.name.clone();
                        }
                        p.live.push(Candidate {
                            seq,
                            znode: path.to_string(),
                            session,
                            data: created_data(&e.message, path).map(str::to_string),
                        });
                        owner.insert(path.to_string(), parent.to_string());
                        touched.push((parent.to_string(), None));
                    }
                    None => {
                        registered
                            .entry(session)
                            .or_insert_with(|| child.to_string());
                    }
                }
            }
            "txn.delete" => {
                if let Some(path) = e.attrs.path.as_deref() {
                    if let Some(parent) = owner.remove(path) {
                        touched.push((parent, Some((path.to_string(), End::NodeDeleted))));
                    }
                }
            }
            "txn.closeSession" => {
                let why = if e.attrs.state.as_deref() == Some("expired") {
                    End::SessionExpired
                } else {
                    End::SessionClosed
                };
                // The paths the record names, and any candidate of the session it does not.
                let mut gone: Vec<String> = e
                    .paths
                    .iter()
                    .filter(|p| owner.contains_key(*p))
                    .cloned()
                    .collect();
                for p in parents.values() {
                    for c in &p.live {
                        if c.session == session && !gone.contains(&c.znode) {
                            gone.push(c.znode.clone());
                        }
                    }
                }
                for path in gone {
                    if let Some(parent) = owner.remove(&path) {
                        touched.push((parent, Some((path, why))));
                    }
                }
            }
            _ => {}
        }
        for (parent, removed) in touched {
            let Some(p) = parents.get_mut(&parent) else {
                continue;
            };
            let mut end = None;
            if let Some((path, why)) = removed {
                p.live.retain(|c| c.znode != path);
                if p.head.as_ref().is_some_and(|(h, _)| *h == path) {
                    end = Some(why);
                }
            }
            let lowest = p.live.iter().min_by_key(|c| c.seq).cloned();
            let same = match (&p.head, &lowest) {
                (Some((h, _)), Some(l)) => *h == l.znode,
                (None, None) => true,
                _ => false,
            };
            if same {
                continue;
            }
            if let Some((_, i)) = p.head.take() {
                if let Some((h, _)) = p.holdings.get_mut(i) {
                    h.until_zxid = Some(zxid);
                    h.until_ts = Some(ts);
                    h.ended = end;
                }
            }
            if let Some(l) = lowest {
                p.head = Some((l.znode.clone(), p.holdings.len()));
                p.holdings.push((
                    Holding {
                        holder: String::new(),
                        session: l.session,
                        znode: l.znode,
                        from_zxid: zxid,
                        from_ts: ts,
                        until_zxid: None,
                        until_ts: None,
                        ended: None,
                    },
                    l.data,
                ));
            }
        }
    }
    parents
        .into_iter()
        .filter(|(_, p)| !p.holdings.is_empty())
        .map(|(parent, p)| Timeline {
            parent,
            scheme: p.scheme,
            holdings: p
                .holdings
                .into_iter()
                .map(|(mut h, data)| {
                    h.holder = data
                        .or_else(|| registered.get(&h.session).cloned())
                        .unwrap_or_else(|| crate::event::hex_id(h.session));
                    h
                })
                .collect(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Attrs;
    use std::sync::Arc;

    fn txn(zxid: u64, kind: &str, session: u64, path: Option<&str>, state: Option<&str>) -> Event {
        Event {
            ts: Some(zxid as i64 * 1_000_000),
            node: Arc::from("zk1"),
            myid: None,
            source: Arc::from("log.1"),
            offset: zxid,
            line: 0,
            level: None,
            thread: None,
            logger: None,
            message: match (kind, path) {
                ("txn.create", Some(p)) if p.starts_with("/election") => {
                    format!("session 0x{session:x} cxid 0x1 zxid 0x{zxid:x} create {p},inst-{session},[31,s{{'world,'anyone}}")
                }
                _ => String::new(),
            },
            kind: Arc::from(kind),
            attrs: Attrs {
                session: Some(session),
                zxid: Some(zxid),
                path: path.map(str::to_string),
                state: state.map(str::to_string),
                ..Attrs::default()
            },
            paths: Vec::new(),
            replicas: Vec::new(),
        }
    }

    #[test]
    fn the_lowest_live_candidate_holds_and_the_next_takes_over() {
        let s = schemes("embedded", EMBEDDED).expect("schemes");
        let lock = |n: u32| format!("/election/calc/{}__lock__{n:010}", "a".repeat(32));
        let mut ev = vec![
            txn(1, "txn.create", 1, Some(&lock(0)), Some("ephemeral")),
            txn(2, "txn.create", 2, Some(&lock(1)), Some("ephemeral")),
            txn(
                3,
                "txn.create",
                3,
                Some("/services/calc/calc-c"),
                Some("ephemeral"),
            ),
            txn(4, "txn.create", 3, Some(&lock(2)), Some("ephemeral")),
            txn(5, "txn.delete", 1, Some(&lock(0)), None),
        ];
        let mut close = txn(7, "txn.closeSession", 2, None, Some("expired"));
        close.paths = vec![lock(1)];
        ev.push(close);
        // The sessions' own order does not matter: zxids do.
        ev.reverse();
        let t = timelines(&ev, &s);
        assert_eq!(t.len(), 1, "{t:?}");
        assert_eq!(t[0].parent, "/election/calc");
        assert_eq!(t[0].scheme, "kazoo-lock");
        let h: Vec<(&str, u64, Option<u64>, Option<End>)> = t[0]
            .holdings
            .iter()
            .map(|h| (h.holder.as_str(), h.from_zxid, h.until_zxid, h.ended))
            .collect();
        assert_eq!(
            h,
            vec![
                ("inst-1", 1, Some(5), Some(End::NodeDeleted)),
                ("inst-2", 5, Some(7), Some(End::SessionExpired)),
                ("inst-3", 7, None, None),
            ]
        );
    }

    #[test]
    fn a_holder_without_data_is_named_by_its_registration() {
        let s = schemes("embedded", EMBEDDED).expect("schemes");
        let latch = format!(
            "/leader/_c_{}-latch-0000000000",
            "0123abcd-0000-1111-2222-333344445555"
        );
        let mut c = txn(2, "txn.create", 9, Some(&latch), Some("ephemeral"));
        c.message.clear();
        let ev = vec![
            txn(
                1,
                "txn.create",
                9,
                Some("/services/ledger/ledger-1"),
                Some("ephemeral"),
            ),
            c,
        ];
        let t = timelines(&ev, &s);
        assert_eq!(t[0].scheme, "curator-leader-latch");
        assert_eq!(t[0].holdings[0].holder, "ledger-1");
    }

    #[test]
    fn json_has_hex_ids_and_rfc3339_times_and_reads_back() {
        let h = Holding {
            holder: "calc-a".into(),
            session: 0x20000fef88a0000,
            znode: "/e/x".into(),
            from_zxid: 0x10000000b,
            from_ts: 1_795_577_949_186_000_000,
            until_zxid: None,
            until_ts: None,
            ended: None,
        };
        let j = serde_json::to_value(&h).expect("json");
        assert_eq!(j["session"], "0x20000fef88a0000");
        assert_eq!(j["from_zxid"], "0x10000000b");
        assert_eq!(j["from"], "2026-11-25T03:39:09.186Z");
        assert!(j["until"].is_null());
        let back: Holding = serde_json::from_value(j).expect("reads back");
        assert_eq!(back, h);
    }

    #[test]
    fn a_scheme_without_a_seq_group_is_refused() {
        let e = schemes("x.toml", "[[scheme]]\nname = \"x\"\nchild = '^n_\\d+$'\n");
        assert!(e.is_err_and(|e| e.to_string().contains("seq")));
    }
}
