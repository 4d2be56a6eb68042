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
    #[serde(default = "default_claim_skew_ms")]
    claim_skew_ms: i64,
    #[serde(default)]
    scheme: Vec<SchemeDef>,
}

fn default_claim_skew_ms() -> i64 {
    500
}

/// The recipe definitions: the naming schemes, and how far a service's claim may sit outside
/// its holding before it counts as a disagreement with the record.
#[derive(Debug, Clone)]
pub struct Recipes {
    /// The naming schemes, in the order they are tried.
    pub schemes: Vec<Scheme>,
    /// A service's role claim this close (ms) to the edges of its holding agrees with the
    /// record: clocks of the service's host and the server's differ, and a claim follows the
    /// transaction that made it true.
    pub claim_skew_ms: i64,
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
    Ok(load(origin, text)?.schemes)
}

/// Reads a `recipes.toml` text; `origin` names it in errors.
pub fn load(origin: &str, text: &str) -> Result<Recipes> {
    let bad = |reason: String| Error::Format {
        origin: origin.to_string(),
        reason,
    };
    let f: File = toml::from_str(text).map_err(|e| bad(e.to_string()))?;
    if !(0..=3_600_000).contains(&f.claim_skew_ms) {
        return Err(bad(format!(
            "claim_skew_ms = {} is outside 0..=3600000",
            f.claim_skew_ms
        )));
    }
    let schemes = f
        .scheme
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
        .collect::<Result<Vec<Scheme>>>()?;
    Ok(Recipes {
        schemes,
        claim_skew_ms: f.claim_skew_ms,
    })
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

impl End {
    /// In words: `session expired`, `session closed`, `znode deleted`.
    pub fn words(self) -> &'static str {
        match self {
            End::SessionExpired => "session expired",
            End::SessionClosed => "session closed",
            End::NodeDeleted => "znode deleted",
        }
    }
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
    /// It held at a snapshot whose transactions before are not in the record: it held from
    /// `from_zxid` at the latest, maybe long before.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub from_snapshot: bool,
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
    /// The ensemble it is in (absent: the default one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ensemble: Option<String>,
    /// The service it elects or locks for: the parent folder of its candidates' registrations
    /// (`/services/calc/calc-a` → `calc`), else the parent's own name (generic words such as
    /// `leader` or `lock` skipped: `/pay/leader` → `pay`).
    #[serde(default)]
    pub service: String,
    /// The naming scheme of its children.
    pub scheme: String,
    /// Every instance that was a candidate (each session once), in order of first candidacy.
    #[serde(default)]
    pub instances: Vec<Instance>,
    /// Who held it, in order.
    pub holdings: Vec<Holding>,
    /// The services' claims the record contradicts (see [`Disagreement`]), in words.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// A candidate of a recipe: its instance name and session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instance {
    /// Named as holders are (see [`Holding::holder`]).
    pub name: String,
    /// Its session.
    #[serde(with = "hex")]
    pub session: u64,
}

/// Path components that say what a znode is for, not whose it is.
const GENERIC: &[&str] = &[
    "leader",
    "leaders",
    "election",
    "elections",
    "leader-election",
    "leader_election",
    "leaderelection",
    "lock",
    "locks",
    "latch",
    "latches",
    "mutex",
    "selector",
];

/// The service a recipe parent serves, by its name alone.
fn service_of_parent(parent: &str) -> String {
    parent
        .rsplit('/')
        .find(|c| !c.is_empty() && !GENERIC.contains(&c.to_ascii_lowercase().as_str()))
        .or_else(|| parent.rsplit('/').find(|c| !c.is_empty()))
        .unwrap_or(parent)
        .to_string()
}

/// The instance a holder's data and its session's registration name: the data, unless it is
/// only an IP address (Curator writes the client's address when no id is set, the same for
/// every instance on a host) and a registration names the instance better.
fn instance_name(data: Option<&str>, registration: Option<&str>, session: u64) -> String {
    let reg = registration.and_then(|r| r.rsplit('/').next());
    match (data, reg) {
        (Some(d), Some(r)) if d.parse::<std::net::IpAddr>().is_ok() => r.to_string(),
        (Some(d), _) => d.to_string(),
        (None, Some(r)) => r.to_string(),
        (None, None) => crate::event::hex_id(session),
    }
}

/// A candidate znode still alive.
#[derive(Debug, Clone)]
struct Candidate {
    seq: u64,
    znode: String,
    session: u64,
    data: Option<String>,
    /// Known from a snapshot only (created before the transactions read).
    seeded: bool,
}

#[derive(Debug, Default)]
struct Parent {
    scheme: String,
    /// Every candidate's (session, data), once per session.
    joined: Vec<(u64, Option<String>)>,
    live: Vec<Candidate>,
    /// The current holder's znode, and where its holding is in `holdings`.
    head: Option<(String, usize)>,
    holdings: Vec<(Holding, Option<String>)>,
}

/// The data a create wrote, from the transaction's line (`create /path,DATA,[acl...`, also
/// `create2`): short printable text only.
fn created_data<'a>(message: &'a str, path: &str) -> Option<&'a str> {
    let at = message.find(&format!(" {path},"))? + 1 + path.len() + 1;
    let rest = &message[at..];
    let end = rest.rfind(",[").or_else(|| rest.rfind(",v{"))?;
    let data = rest[..end].trim();
    (!data.is_empty()
        && data.len() <= 128
        && data.chars().all(|c| !c.is_control())
        && !data.starts_with('#'))
    .then_some(data)
}

/// The kinds of the events [`timelines`] reads: the creates, deletes and closeSessions of the
/// txn logs, and the sessions' ephemerals in snapshots (for candidates created before the
/// oldest transaction read).
pub const NEEDS: &[&str] = &[
    "txn.create",
    "txn.create2",
    "txn.delete",
    "txn.closeSession",
    "snapshot.session",
];

/// Splits a znode path into (parent, child); None for top-level nodes.
fn split(path: &str) -> Option<(&str, &str)> {
    match path.rsplit_once('/') {
        Some((p, c)) if !p.is_empty() => Some((p, c)),
        _ => None,
    }
}

/// The scheme a child's name follows, and its sequence number.
fn scheme_of<'s>(schemes: &'s [Scheme], child: &str) -> Option<(&'s Scheme, u64)> {
    schemes.iter().find_map(|s| {
        let c = s.child.captures(child)?;
        let seq = c.name("seq")?.as_str().parse::<u64>().ok()?;
        Some((s, seq))
    })
}

/// The recipe parent of a znode `path` whose child name follows one of `schemes` (a candidate
/// or lock node), or None.
pub fn recipe_parent<'p>(path: &'p str, schemes: &[Scheme]) -> Option<&'p str> {
    let (parent, child) = split(path)?;
    scheme_of(schemes, child).map(|_| parent)
}

/// Rebuilds every recipe parent's holder timeline from the transactions among `events` (in zxid
/// order; other events are ignored). Snapshots' sessions (`snapshot.session`) bring the
/// candidates whose create no transaction read records: their holdings start at the snapshot
/// (`from_snapshot`), the earliest the record shows them.
pub fn timelines<'a>(
    events: impl IntoIterator<Item = &'a Event>,
    schemes: &[Scheme],
) -> Vec<Timeline> {
    let mut txns: Vec<&Event> = events
        .into_iter()
        .filter(|e| {
            (e.kind.starts_with("txn.") || &*e.kind == "snapshot.session") && e.attrs.zxid.is_some()
        })
        .collect();
    // A snapshot named for zxid Z holds Z's effect: it comes after Z's transaction.
    // One snapshot's sessions stay together.
    txns.sort_by(|a, b| {
        let key = |e: &Event| {
            let snap = &*e.kind == "snapshot.session";
            (
                e.attrs.zxid,
                snap,
                if snap { e.source.clone() } else { "".into() },
            )
        };
        key(a).cmp(&key(b))
    });
    // A transaction of an epoch written after a later epoch's first one is a replaced leader's
    // that stalled and resumed (it sits in its own log only and was never committed: the
    // quorum had moved on). Txn times are the leaders' clocks; an election lies between the two.
    let mut first_of_epoch: BTreeMap<u64, i64> = BTreeMap::new();
    for e in txns.iter().filter(|e| e.kind.starts_with("txn.")) {
        if let (Some(z), Some(t)) = (e.attrs.zxid, e.ts) {
            first_of_epoch.entry(z >> 32).or_insert(t);
        }
    }
    let mut later_began = BTreeMap::new();
    let mut min = i64::MAX;
    for (epoch, t) in first_of_epoch.iter().rev() {
        later_began.insert(*epoch, min);
        min = min.min(*t);
    }
    txns.retain(|e| {
        !e.kind.starts_with("txn.")
            || match (e.attrs.zxid, e.ts) {
                (Some(z), Some(t)) => later_began.get(&(z >> 32)).is_none_or(|b| t <= *b),
                _ => true,
            }
    });
    // The znodes whose creation the record shows: a snapshot never seeds them.
    let created: std::collections::HashSet<&str> = txns
        .iter()
        .filter(|e| e.kind.starts_with("txn.create"))
        .filter_map(|e| e.attrs.path.as_deref())
        .collect();
    let mut parents: BTreeMap<String, Parent> = BTreeMap::new();
    // A session's other ephemerals (its registration): the first one's path.
    let mut registered: HashMap<u64, String> = HashMap::new();
    // Where each candidate znode lives.
    let mut owner: HashMap<String, String> = HashMap::new();
    // Parents whose candidates changed and are not judged yet: one snapshot's sessions are
    // read together (its state is one instant), so the head is judged after the last of them.
    let mut touched: Vec<(String, Option<(String, End)>)> = Vec::new();
    for (k, e) in txns.iter().enumerate() {
        let zxid = e.attrs.zxid.unwrap_or(0);
        let ts = e.ts.unwrap_or(0);
        let session = e.attrs.session.unwrap_or(0);
        // (path, data, seeded) of the candidates this event brings.
        let mut new: Vec<(&str, Option<String>, bool)> = Vec::new();
        match &*e.kind {
            "txn.create" | "txn.create2" if e.attrs.state.as_deref() == Some("ephemeral") => {
                if let Some(path) = e.attrs.path.as_deref() {
                    new.push((
                        path,
                        created_data(&e.message, path).map(str::to_string),
                        false,
                    ));
                }
            }
            "snapshot.session" => {
                // A registration is the session's whatever the record says of the path later;
                // a candidate (a unique sequential name) only if the record never shows its
                // create.
                for path in &e.paths {
                    let candidate =
                        split(path).is_some_and(|(_, c)| scheme_of(schemes, c).is_some());
                    if !candidate || !created.contains(path.as_str()) && !owner.contains_key(path) {
                        new.push((path, None, true));
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
        for (path, data, seeded) in new {
            let Some((parent, child)) = split(path) else {
                continue;
            };
            let Some((s, seq)) = scheme_of(schemes, child) else {
                registered
                    .entry(session)
                    .or_insert_with(|| path.to_string());
                continue;
            };
            let p = parents.entry(parent.to_string()).or_default();
            if p.scheme.is_empty() {
                p.scheme = s.name.clone();
            }
            if !p.joined.iter().any(|(x, _)| *x == session) {
                p.joined.push((session, data.clone()));
            }
            p.live.retain(|c| c.znode != path);
            p.live.push(Candidate {
                seq,
                znode: path.to_string(),
                session,
                data,
                seeded,
            });
            owner.insert(path.to_string(), parent.to_string());
            touched.push((parent.to_string(), None));
        }
        let same_snapshot = |n: &&Event| {
            &*n.kind == "snapshot.session"
                && &*e.kind == "snapshot.session"
                && n.attrs.zxid == e.attrs.zxid
                && n.source == e.source
        };
        if txns.get(k + 1).is_some_and(same_snapshot) {
            continue;
        }
        for (parent, removed) in std::mem::take(&mut touched) {
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
                        // Known from a snapshot and holding as of it: maybe long before.
                        from_snapshot: l.seeded && &*e.kind == "snapshot.session",
                        until_zxid: None,
                        until_ts: None,
                        ended: None,
                    },
                    l.data,
                ));
            }
        }
    }
    let reg = |s: u64| registered.get(&s).map(String::as_str);
    parents
        .into_iter()
        .filter(|(_, p)| !p.holdings.is_empty())
        .map(|(parent, p)| {
            // The service: the folder most of its candidates registered in.
            let mut folders: Vec<&str> = p
                .joined
                .iter()
                .filter_map(|(s, _)| reg(*s)?.rsplit_once('/'))
                .filter_map(|(dir, _)| dir.rsplit('/').next())
                .filter(|d| !d.is_empty())
                .collect();
            folders.sort_unstable();
            let service = folders
                .chunk_by(|a, b| a == b)
                .max_by_key(|c| c.len())
                .and_then(|c| c.first())
                .map_or_else(|| service_of_parent(&parent), |d| d.to_string());
            Timeline {
                ensemble: None,
                service,
                scheme: p.scheme,
                instances: p
                    .joined
                    .iter()
                    .map(|(s, d)| Instance {
                        name: instance_name(d.as_deref(), reg(*s), *s),
                        session: *s,
                    })
                    .collect(),
                holdings: p
                    .holdings
                    .into_iter()
                    .map(|(mut h, data)| {
                        h.holder = instance_name(data.as_deref(), reg(h.session), h.session);
                        h
                    })
                    .collect(),
                parent,
                warnings: Vec::new(),
            }
        })
        .collect()
}

/// The span of the record among `events`: the first and last transaction's times.
pub fn record_span<'a>(events: impl IntoIterator<Item = &'a Event>) -> (i64, i64) {
    events
        .into_iter()
        .filter(|e| e.kind.starts_with("txn."))
        .filter_map(|e| e.ts)
        .fold((i64::MAX, i64::MIN), |(lo, hi), t| (lo.min(t), hi.max(t)))
}

/// Every recipe's timeline among `events` (transactions, snapshots' sessions and the services'
/// role lines, in any order), each with the warnings of the claims its record contradicts.
pub fn read(events: &[Event], recipes: &Recipes) -> Vec<Timeline> {
    // Two ensembles' recipes are unrelated, even at the same path.
    if let Some(parts) = crate::event::split_ensembles(events) {
        return parts
            .iter()
            .flat_map(|(_, part)| read(part, recipes))
            .collect();
    }
    let mut list = timelines(events, &recipes.schemes);
    let ensemble = crate::event::named_ensemble(events);
    for t in &mut list {
        t.ensemble.clone_from(&ensemble);
    }
    let mut claims: Vec<&Event> = events
        .iter()
        .filter(|e| &*e.kind == SERVICE_ROLE && e.ts.is_some())
        .collect();
    claims.sort_by_key(|e| (e.ts, e.offset));
    for d in disagreements(&list, &claims, recipes.claim_skew_ms, record_span(events)) {
        if let Some(t) = list.iter_mut().find(|t| t.parent == d.parent) {
            t.warnings.push(d.describe());
        }
    }
    list
}

/// The kind of a service's own role line (`became PRIMARY`, `role change: standby -> primary`).
pub const SERVICE_ROLE: &str = "service.role";

/// A service's role line that claims the primary role (primary, leader, master).
pub fn claims_primary(e: &Event) -> bool {
    &*e.kind == SERVICE_ROLE
        && e.attrs
            .state
            .as_deref()
            .map(str::to_ascii_lowercase)
            .is_some_and(|s| {
                s.ends_with("primary") || s.ends_with("leader") || s.ends_with("master")
            })
}

/// The recipe instances a service's line speaks for: by its session when it names one (a
/// candidate's session), else by its node's name (an instance's name, any case). Each as
/// (timeline index, instance), the timelines whose parent the line names first.
pub fn speakers<'t>(timelines: &'t [Timeline], e: &Event) -> Vec<(usize, &'t Instance)> {
    let mut out: Vec<(usize, &Instance)> = Vec::new();
    for (i, t) in timelines.iter().enumerate() {
        let found = match e.attrs.session {
            Some(s) if t.instances.iter().any(|x| x.session == s) => {
                t.instances.iter().find(|x| x.session == s)
            }
            _ => t
                .instances
                .iter()
                .rfind(|x| x.name.eq_ignore_ascii_case(&e.node)),
        };
        if let Some(x) = found {
            out.push((i, x));
        }
    }
    out.sort_by_key(|(i, _)| {
        timelines
            .get(*i)
            .is_none_or(|t| !e.message.contains(t.parent.as_str()))
    });
    out
}

/// Does `x` (matched by session when the line named one, else by name) hold timeline `t` at
/// `at`, give or take `skew` ns?
fn holds(t: &Timeline, x: &Instance, by_session: bool, at: i64, skew: i64) -> bool {
    t.holdings.iter().any(|h| {
        let mine = if by_session {
            h.session == x.session
        } else {
            h.holder == x.name
        };
        mine && h.from_ts.saturating_sub(skew) <= at
            && at <= h.until_ts.unwrap_or(i64::MAX).saturating_add(skew)
    })
}

/// A service claiming a role the record says it did not hold: a split-brain signal. Claims in
/// a row by the same instance while the same holder held are one disagreement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disagreement {
    /// The claimant (instance name).
    pub instance: String,
    /// Its session, when its line named one.
    pub session: Option<u64>,
    /// The node whose log holds the claims.
    pub node: String,
    /// The recipe parent it claims.
    pub parent: String,
    /// That recipe's service.
    pub service: String,
    /// How many claims.
    pub claims: usize,
    /// First claim (ns).
    pub first: i64,
    /// Last claim (ns).
    pub last: i64,
    /// The first claim's `file:offset`.
    pub evidence: String,
    /// The claimed role as the line words it.
    pub role: String,
    /// Who held the recipe at the first claim, by the record (None: nobody).
    pub holder: Option<Holding>,
    /// The claimant's last holding that had ended before the first claim.
    pub lost: Option<Holding>,
}

/// The claims among `claims` (time order) that the record contradicts. Claims are judged only
/// inside the record's span (`span`: the first and last transaction's times) and from the
/// recipe's first holding on: outside them the record cannot say who held.
pub fn disagreements(
    timelines: &[Timeline],
    claims: &[&Event],
    claim_skew_ms: i64,
    span: (i64, i64),
) -> Vec<Disagreement> {
    let skew = claim_skew_ms.saturating_mul(1_000_000);
    let mut out: Vec<Disagreement> = Vec::new();
    for e in claims.iter().copied().filter(|e| claims_primary(e)) {
        let Some(at) = e.ts else { continue };
        if at < span.0 || at > span.1 {
            continue;
        }
        let who = speakers(timelines, e);
        let by_session = e
            .attrs
            .session
            .is_some_and(|s| who.iter().any(|(_, x)| x.session == s));
        let Some(&(ti, x)) = who.first() else {
            continue;
        };
        let Some(t) = timelines.get(ti) else { continue };
        if t.holdings.first().is_none_or(|h| at < h.from_ts) {
            continue;
        }
        if who
            .iter()
            .filter_map(|(i, x)| Some((timelines.get(*i)?, *x)))
            .any(|(t, x)| holds(t, x, by_session, at, skew))
        {
            continue;
        }
        let holder = t
            .holdings
            .iter()
            .rfind(|h| h.from_ts <= at && at <= h.until_ts.unwrap_or(i64::MAX))
            .cloned();
        if let Some(d) = out.last_mut().filter(|d| {
            d.instance == x.name
                && d.parent == t.parent
                && d.holder.as_ref().map(|h| &h.znode) == holder.as_ref().map(|h| &h.znode)
        }) {
            d.claims += 1;
            d.last = at;
            continue;
        }
        let lost = t
            .holdings
            .iter()
            .rfind(|h| {
                (if by_session {
                    h.session == x.session
                } else {
                    h.holder == x.name
                }) && h.until_ts.is_some_and(|u| u < at)
            })
            .cloned();
        out.push(Disagreement {
            instance: x.name.clone(),
            session: e.attrs.session,
            node: e.node.to_string(),
            parent: t.parent.clone(),
            service: t.service.clone(),
            claims: 1,
            first: at,
            last: at,
            evidence: format!("{}:{}", e.source, e.offset),
            role: e.attrs.state.clone().unwrap_or_default(),
            holder,
            lost,
        });
    }
    out
}

impl Disagreement {
    /// In words, for a warning.
    pub fn describe(&self) -> String {
        let ms = |ns: i64| ns / 1_000_000;
        let claims = if self.claims == 1 {
            format!(
                "{} ({}) claims {} at {}",
                self.instance,
                self.node,
                self.role,
                crate::time::rfc3339(self.first)
            )
        } else {
            format!(
                "{} ({}) claims {} {} times from {} to {} ({} ms)",
                self.instance,
                self.node,
                self.role,
                self.claims,
                crate::time::rfc3339(self.first),
                crate::time::rfc3339(self.last),
                ms(self.last - self.first)
            )
        };
        let held = match &self.holder {
            Some(h) => format!(
                "{} held {} since zxid {} (its znode {})",
                h.holder,
                self.parent,
                crate::event::hex_id(h.from_zxid),
                h.znode
            ),
            None => format!("nobody held {}", self.parent),
        };
        let lost = match &self.lost {
            Some(l) => format!(
                "; {} had lost it at zxid {}{} {} ms before",
                self.instance,
                l.until_zxid.map(crate::event::hex_id).unwrap_or_default(),
                l.ended
                    .map(|e| format!(" ({})", e.words()))
                    .unwrap_or_default(),
                l.until_ts.map_or(0, |u| ms(self.first - u))
            ),
            None => format!("; {} did not hold it then", self.instance),
        };
        format!(
            "split brain? {claims}, but the record says {held}{lost} (evidence {})",
            self.evidence
        )
    }
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
            ensemble: crate::event::default_ensemble(),
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
    fn a_replaced_leader_s_late_transactions_are_not_the_record() {
        // Epoch 2's leader stalls; epoch 3 begins at t = 0x300000001 ms; the old leader resumes
        // and writes a closeSession of epoch 2 into its own log after that (never committed).
        let s = schemes("embedded", EMBEDDED).expect("schemes");
        let lock = |n: u32| format!("/election/calc/{}__lock__{n:010}", "b".repeat(32));
        let mut stale = txn(0x2_0000_0009, "txn.closeSession", 1, None, Some("expired"));
        stale.ts = Some(0x3_0000_0005 * 1_000_000);
        stale.paths = vec![lock(0)];
        let ev = vec![
            txn(
                0x2_0000_0001,
                "txn.create",
                1,
                Some(&lock(0)),
                Some("ephemeral"),
            ),
            txn(
                0x2_0000_0002,
                "txn.create",
                2,
                Some(&lock(1)),
                Some("ephemeral"),
            ),
            stale,
            txn(0x3_0000_0001, "txn.delete", 1, Some(&lock(0)), None),
        ];
        let t = timelines(&ev, &s);
        let h: Vec<(&str, Option<u64>, Option<End>)> = t[0]
            .holdings
            .iter()
            .map(|h| (h.holder.as_str(), h.until_zxid, h.ended))
            .collect();
        assert_eq!(
            h,
            vec![
                ("inst-1", Some(0x3_0000_0001), Some(End::NodeDeleted)),
                ("inst-2", None, None)
            ]
        );
    }

    #[test]
    fn candidates_created_before_the_txn_logs_come_from_a_snapshot() {
        let s = schemes("embedded", EMBEDDED).expect("schemes");
        let latch = |n: u32| {
            format!(
                "/pay/leader/_c_{}-lock-{n:010}",
                "0123abcd-0000-1111-2222-333344445555"
            )
        };
        // The snapshot at zxid 0x100: session 7 holds the lowest node and is registered; session
        // 8 waits. Their creates are older than the txn logs read.
        let mut s7 = txn(0x100, "snapshot.session", 7, None, None);
        s7.paths = vec![latch(3), "/services/pay/pay-a".into()];
        let mut s8 = txn(0x100, "snapshot.session", 8, None, None);
        s8.paths = vec![latch(4)];
        let mut close = txn(0x105, "txn.closeSession", 7, None, Some("expired"));
        close.paths = vec![latch(3), "/services/pay/pay-a".into()];
        // The same snapshot from another server, and one taken after the expiry, change nothing.
        let ev = vec![s7.clone(), s8.clone(), s7, s8, close];
        let t = timelines(&ev, &s);
        assert_eq!(t.len(), 1, "{t:#?}");
        assert_eq!(t[0].service, "pay", "named by the registration's folder");
        let h = &t[0].holdings;
        assert_eq!(h.len(), 2, "{h:#?}");
        assert_eq!(
            (h[0].holder.as_str(), h[0].from_zxid, h[0].from_snapshot),
            ("pay-a", 0x100, true)
        );
        assert_eq!(
            (h[0].until_zxid, h[0].ended),
            (Some(0x105), Some(End::SessionExpired))
        );
        assert_eq!((h[1].holder.as_str(), h[1].from_zxid), ("0x8", 0x105));
    }

    #[test]
    fn curator_s_default_ip_data_yields_to_the_registration() {
        assert_eq!(
            instance_name(Some("127.0.1.1"), Some("/services/pay/pay-b"), 9),
            "pay-b"
        );
        assert_eq!(instance_name(Some("10.0.0.7"), None, 9), "10.0.0.7");
        assert_eq!(
            instance_name(Some("calc-a"), Some("/services/calc/x"), 9),
            "calc-a"
        );
        assert_eq!(instance_name(None, None, 0x1f), "0x1f");
        assert_eq!(service_of_parent("/app/pay/leader"), "pay");
        assert_eq!(service_of_parent("/election/calc"), "calc");
        assert_eq!(service_of_parent("/locks"), "locks");
    }

    #[test]
    fn json_has_hex_ids_and_rfc3339_times_and_reads_back() {
        let h = Holding {
            holder: "calc-a".into(),
            session: 0x20000fef88a0000,
            znode: "/e/x".into(),
            from_zxid: 0x10000000b,
            from_ts: 1_795_577_949_186_000_000,
            from_snapshot: false,
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
