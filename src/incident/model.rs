//! What an incident is: its kind, the per-kind facts, its timeline, and the flat JSON record
//! (`zklens incidents -o json`, `/api/incidents`) that users read, whatever the kind.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The kinds of incident, one detector each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum IncidentKind {
    /// A leader was lost and another epoch formed.
    LeaderFailover,
    /// A session expired that no failover explains.
    SessionExpiry,
    /// Too few servers to serve, between a leader's loss and the next quorum.
    QuorumLoss,
    /// A server started (or came back) and joined a running ensemble.
    ServerRejoin,
    /// Many failovers in a short window.
    ElectionStorm,
}

impl IncidentKind {
    /// The name in ids, JSON and the definition file's name (`leader-failover`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            IncidentKind::LeaderFailover => "leader-failover",
            IncidentKind::SessionExpiry => "session-expiry",
            IncidentKind::QuorumLoss => "quorum-loss",
            IncidentKind::ServerRejoin => "server-rejoin",
            IncidentKind::ElectionStorm => "election-storm",
        }
    }
}

impl fmt::Display for IncidentKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// One step of a timeline.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Step {
    /// When (RFC 3339 UTC).
    pub ts: String,
    /// Where.
    pub node: String,
    /// The event kind.
    pub kind: String,
    /// What happened, in words.
    pub summary: String,
    /// `file:offset` of the evidence.
    pub evidence: String,
    /// When, ns since the Unix epoch on the node's clock (not serialized).
    #[serde(skip)]
    pub at: i64,
    /// The session its event names, if any (not serialized; ShiViz's hosts are client
    /// sessions).
    #[serde(skip)]
    pub session: Option<u64>,
}

/// A service whose primary changed. From the record (`source: "record"`): a recipe's holder
/// changed in the committed transactions, with the services' own lines as corroboration. From
/// the logs (`source: "logs"`): a service said so and no recipe covers it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ServiceFailover {
    /// Service name: the recipe's service (its candidates' registration folder), or the logger
    /// of a role-change line.
    pub service: String,
    /// Previous primary (instance), if known.
    pub from: Option<String>,
    /// New primary (instance).
    pub to: String,
    /// When the new primary took over (RFC 3339 UTC): the transaction that made it the holder,
    /// or its role-change line.
    pub at: String,
    /// Where this row comes from: `record` or `logs`.
    #[serde(default = "logs")]
    pub source: String,
    /// The recipe parent (`/election/calc`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipe: Option<String>,
    /// Why the old holder stopped: `session_expired`, `session_closed`, `node_deleted`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended: Option<crate::recipe::End>,
    /// The zxid that removed the old holder's znode (its delete or closeSession), `0x` hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted_zxid: Option<String>,
    /// When (RFC 3339 UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted_at: Option<String>,
    /// The zxid from which the new primary held (the removal itself when it was next in line,
    /// else its own create), `0x` hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub takeover_zxid: Option<String>,
    /// When the new primary noticed (RFC 3339 UTC): its first role line or its next write.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub noticed_at: Option<String>,
    /// How long the service had no primary that knew it: from the deletion to `noticed_at`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gap_ms: Option<u64>,
    /// The instances' own lines about it, with when each noticed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub noticed: Vec<Notice>,
}

fn logs() -> String {
    "logs".into()
}

/// An instance's own line about a role change: when it noticed, what it said.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Notice {
    /// The instance.
    pub instance: String,
    /// The node whose log holds the line.
    pub node: String,
    /// When (RFC 3339 UTC).
    pub at: String,
    /// What it says: the role as worded, or `write` for a transaction of its session.
    pub said: String,
    /// ms after the old holder's deletion (negative: before it).
    pub after_ms: i64,
    /// `file:offset`.
    pub evidence: String,
}

/// A client session that reconnected to another server.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SessionMove {
    /// Session id (`0x` hex).
    pub session: String,
    /// The client node.
    pub client: String,
    /// Server address before.
    pub from: String,
    /// Server address after.
    pub to: String,
    /// When (RFC 3339 UTC).
    pub at: String,
}

/// A change of leader: who led which epoch before and after (None: not known).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Leadership {
    /// Leader before (server id).
    pub old_leader: Option<u64>,
    /// Leader after (server id).
    pub new_leader: Option<u64>,
    /// Epoch before.
    pub old_epoch: Option<u64>,
    /// Epoch after.
    pub new_epoch: Option<u64>,
}

/// What a leader failover did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Failover {
    /// The leaders and epochs.
    pub change: Leadership,
    /// Election time reported by each server (node → ms).
    pub election_ms: BTreeMap<String, u64>,
    /// How each follower synchronised (node → diff/snap/trunc).
    pub sync: BTreeMap<String, String>,
    /// Sessions the new leader expired (`0x` hex).
    pub sessions_expired: Vec<String>,
    /// Ephemeral znodes deleted with them (from the committed closeSession txns).
    pub ephemerals_lost: Vec<String>,
    /// Services whose primary changed.
    pub service_failovers: Vec<ServiceFailover>,
    /// Client sessions that reconnected to another server.
    pub sessions_moved: Vec<SessionMove>,
    /// Claims no commit confirms, and why.
    pub unconfirmed: Vec<String>,
    /// Logs that contradict the record (a service claiming a role it does not hold).
    pub warnings: Vec<String>,
}

/// What a session expiry took with it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Expiry {
    /// The session (`0x` hex).
    pub session: String,
    /// The server that expired it (server id).
    pub leader: Option<u64>,
    /// Ephemeral znodes deleted with it (from the committed closeSession txn).
    pub ephemerals_lost: Vec<String>,
    /// Services whose primary changed.
    pub service_failovers: Vec<ServiceFailover>,
    /// Claims no commit confirms, and why.
    pub unconfirmed: Vec<String>,
    /// Logs that contradict the record (a service claiming a role it does not hold).
    pub warnings: Vec<String>,
}

/// How long a quorum was lost.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QuorumLoss {
    /// The leaders and epochs of the failover it belongs to.
    pub change: Leadership,
    /// Election time reported by each server (node → ms).
    pub election_ms: BTreeMap<String, u64>,
    /// How long the ensemble could not serve.
    pub unavailable_ms: Option<u64>,
}

/// How a server rejoined.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rejoin {
    /// The server (node).
    pub server: String,
    /// Its election time, ms.
    pub election_ms: Option<u64>,
    /// How it synchronised (diff/snap/trunc).
    pub sync: Option<String>,
}

/// A run of failovers.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Storm {
    /// The first failover's old leader and epoch, the last one's new ones.
    pub change: Leadership,
    /// Sessions the failovers expired (`0x` hex).
    pub sessions_expired: Vec<String>,
    /// Ephemeral znodes deleted with them.
    pub ephemerals_lost: Vec<String>,
    /// Services whose primary changed.
    pub service_failovers: Vec<ServiceFailover>,
    /// The failovers' warnings.
    pub warnings: Vec<String>,
}

/// The facts of an incident, by kind.
#[derive(Debug, Clone, PartialEq)]
pub enum Detail {
    /// leader-failover.
    LeaderFailover(Failover),
    /// session-expiry.
    SessionExpiry(Expiry),
    /// quorum-loss.
    QuorumLoss(QuorumLoss),
    /// server-rejoin.
    ServerRejoin(Rejoin),
    /// election-storm.
    ElectionStorm(Storm),
}

impl Detail {
    /// The kind of incident these facts describe.
    pub fn kind(&self) -> IncidentKind {
        match self {
            Detail::LeaderFailover(_) => IncidentKind::LeaderFailover,
            Detail::SessionExpiry(_) => IncidentKind::SessionExpiry,
            Detail::QuorumLoss(_) => IncidentKind::QuorumLoss,
            Detail::ServerRejoin(_) => IncidentKind::ServerRejoin,
            Detail::ElectionStorm(_) => IncidentKind::ElectionStorm,
        }
    }
}

/// A reconstructed incident. It serializes as its [`Record`].
#[derive(Debug, Clone, PartialEq)]
pub struct Incident {
    /// Stable id: `leader-failover-epoch-N`, `session-expiry-0x<session>`, ...
    pub id: String,
    /// First evidence (RFC 3339 UTC).
    pub started_at: String,
    /// Last evidence (RFC 3339 UTC).
    pub ended_at: String,
    /// The timeline.
    pub steps: Vec<Step>,
    /// What happened, by kind.
    pub detail: Detail,
    /// When it started, ns since the Unix epoch (incidents are listed in this order).
    pub(crate) start_ns: i64,
    /// The ensemble it happened in (None: the default one). Its id then ends in `@NAME`.
    pub ensemble: Option<String>,
}

impl Incident {
    /// Its kind.
    pub fn kind(&self) -> IncidentKind {
        self.detail.kind()
    }

    /// Where it is listed: by start, and among incidents that start together, a failover's
    /// quorum loss, the failover, rejoins, storms, expiries.
    pub fn order_key(&self) -> (i64, u8) {
        let tie = match self.kind() {
            IncidentKind::QuorumLoss => 0,
            IncidentKind::LeaderFailover => 1,
            IncidentKind::ServerRejoin => 2,
            IncidentKind::ElectionStorm => 3,
            IncidentKind::SessionExpiry => 4,
        };
        (self.start_ns, tie)
    }

    /// The flat view every kind shares (the JSON shape).
    pub fn record(&self) -> Record<'_> {
        Record::of(self)
    }
}

impl Serialize for Incident {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.record().serialize(s)
    }
}

/// The flat record as read back (the `--server` client decodes the service's answers).
#[derive(Deserialize)]
struct OwnedRecord {
    id: String,
    #[serde(default)]
    ensemble: Option<String>,
    kind: IncidentKind,
    started_at: String,
    ended_at: String,
    #[serde(default)]
    old_leader: Option<u64>,
    #[serde(default)]
    new_leader: Option<u64>,
    #[serde(default)]
    old_epoch: Option<u64>,
    #[serde(default)]
    new_epoch: Option<u64>,
    #[serde(default)]
    election_ms: BTreeMap<String, u64>,
    #[serde(default)]
    sync: BTreeMap<String, String>,
    #[serde(default)]
    sessions_expired: Vec<String>,
    #[serde(default)]
    ephemerals_lost: Vec<String>,
    #[serde(default)]
    service_failovers: Vec<ServiceFailover>,
    #[serde(default)]
    sessions_moved: Vec<SessionMove>,
    #[serde(default)]
    steps: Vec<Step>,
    #[serde(default)]
    unconfirmed: Vec<String>,
    #[serde(default)]
    warnings: Vec<String>,
    #[serde(default)]
    unavailable_ms: Option<u64>,
    #[serde(default)]
    server: Option<String>,
}

impl<'de> Deserialize<'de> for Incident {
    /// Reads the flat [`Record`] back into the typed incident it was written from (each kind
    /// takes its own fields), so a decoded incident serializes to the same record.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Incident, D::Error> {
        let r = OwnedRecord::deserialize(d)?;
        let utc = |t: &str| crate::time::parse_time(t, crate::time::Tz::Utc, 0).unwrap_or(0);
        let change = Leadership {
            old_leader: r.old_leader,
            new_leader: r.new_leader,
            old_epoch: r.old_epoch,
            new_epoch: r.new_epoch,
        };
        let detail = match r.kind {
            IncidentKind::LeaderFailover => Detail::LeaderFailover(Failover {
                change,
                election_ms: r.election_ms,
                sync: r.sync,
                sessions_expired: r.sessions_expired,
                ephemerals_lost: r.ephemerals_lost,
                service_failovers: r.service_failovers,
                sessions_moved: r.sessions_moved,
                unconfirmed: r.unconfirmed,
                warnings: r.warnings,
            }),
            IncidentKind::SessionExpiry => Detail::SessionExpiry(Expiry {
                session: r.sessions_expired.into_iter().next().unwrap_or_default(),
                leader: r.old_leader,
                ephemerals_lost: r.ephemerals_lost,
                service_failovers: r.service_failovers,
                unconfirmed: r.unconfirmed,
                warnings: r.warnings,
            }),
            IncidentKind::QuorumLoss => Detail::QuorumLoss(QuorumLoss {
                change,
                election_ms: r.election_ms,
                unavailable_ms: r.unavailable_ms,
            }),
            IncidentKind::ServerRejoin => {
                let server = r.server.unwrap_or_default();
                Detail::ServerRejoin(Rejoin {
                    election_ms: r.election_ms.get(&server).copied(),
                    sync: r.sync.get(&server).cloned(),
                    server,
                })
            }
            IncidentKind::ElectionStorm => Detail::ElectionStorm(Storm {
                change,
                sessions_expired: r.sessions_expired,
                ephemerals_lost: r.ephemerals_lost,
                service_failovers: r.service_failovers,
                warnings: r.warnings,
            }),
        };
        let steps = r
            .steps
            .into_iter()
            .map(|mut s| {
                s.at = utc(&s.ts);
                s
            })
            .collect();
        Ok(Incident {
            start_ns: utc(&r.started_at),
            ensemble: r.ensemble,
            id: r.id,
            started_at: r.started_at,
            ended_at: r.ended_at,
            steps,
            detail,
        })
    }
}

/// An incident as one flat record: every kind's fields, empty where a kind has none, in the
/// order `zklens incidents -o json` has always printed them (a format users depend on).
#[derive(Debug, Clone, Serialize)]
pub struct Record<'a> {
    /// Stable id.
    pub id: &'a str,
    /// The ensemble (absent for the default one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ensemble: Option<&'a str>,
    /// The kind.
    pub kind: IncidentKind,
    /// First evidence (RFC 3339 UTC).
    pub started_at: &'a str,
    /// Last evidence (RFC 3339 UTC).
    pub ended_at: &'a str,
    /// Leader before (server id); for a session expiry, the leader that expired it.
    pub old_leader: Option<u64>,
    /// Leader after (server id).
    pub new_leader: Option<u64>,
    /// Epoch before.
    pub old_epoch: Option<u64>,
    /// Epoch after.
    pub new_epoch: Option<u64>,
    /// Election time reported by each server (node → ms).
    pub election_ms: Cow<'a, BTreeMap<String, u64>>,
    /// How each follower synchronised (node → diff/snap/trunc).
    pub sync: Cow<'a, BTreeMap<String, String>>,
    /// Sessions expired (`0x` hex).
    pub sessions_expired: Cow<'a, [String]>,
    /// Ephemeral znodes deleted with them.
    pub ephemerals_lost: &'a [String],
    /// Services whose primary changed.
    pub service_failovers: &'a [ServiceFailover],
    /// Client sessions that reconnected to another server.
    pub sessions_moved: &'a [SessionMove],
    /// The timeline.
    pub steps: &'a [Step],
    /// Claims no commit confirms, and why.
    pub unconfirmed: &'a [String],
    /// Logs that contradict the record: a service claiming a role it does not hold (split
    /// brain).
    pub warnings: &'a [String],
    /// quorum-loss: how long the ensemble could not serve.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unavailable_ms: Option<u64>,
    /// server-rejoin: the server that rejoined.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<&'a str>,
}

impl<'a> Record<'a> {
    fn of(i: &'a Incident) -> Record<'a> {
        let mut r = Record {
            id: &i.id,
            ensemble: i.ensemble.as_deref(),
            kind: i.kind(),
            started_at: &i.started_at,
            ended_at: &i.ended_at,
            old_leader: None,
            new_leader: None,
            old_epoch: None,
            new_epoch: None,
            election_ms: Cow::Owned(BTreeMap::new()),
            sync: Cow::Owned(BTreeMap::new()),
            sessions_expired: Cow::Borrowed(&[]),
            ephemerals_lost: &[],
            service_failovers: &[],
            sessions_moved: &[],
            steps: &i.steps,
            unconfirmed: &[],
            warnings: &[],
            unavailable_ms: None,
            server: None,
        };
        match &i.detail {
            Detail::LeaderFailover(f) => {
                r.change(&f.change);
                r.election_ms = Cow::Borrowed(&f.election_ms);
                r.sync = Cow::Borrowed(&f.sync);
                r.sessions_expired = Cow::Borrowed(&f.sessions_expired);
                r.ephemerals_lost = &f.ephemerals_lost;
                r.service_failovers = &f.service_failovers;
                r.sessions_moved = &f.sessions_moved;
                r.unconfirmed = &f.unconfirmed;
                r.warnings = &f.warnings;
            }
            Detail::SessionExpiry(x) => {
                r.old_leader = x.leader;
                r.sessions_expired = Cow::Owned(vec![x.session.clone()]);
                r.ephemerals_lost = &x.ephemerals_lost;
                r.service_failovers = &x.service_failovers;
                r.unconfirmed = &x.unconfirmed;
                r.warnings = &x.warnings;
            }
            Detail::QuorumLoss(q) => {
                r.change(&q.change);
                r.election_ms = Cow::Borrowed(&q.election_ms);
                r.unavailable_ms = q.unavailable_ms;
            }
            Detail::ServerRejoin(j) => {
                let mut em = BTreeMap::new();
                if let Some(ms) = j.election_ms {
                    em.insert(j.server.clone(), ms);
                }
                let mut sync = BTreeMap::new();
                if let Some(m) = &j.sync {
                    sync.insert(j.server.clone(), m.clone());
                }
                r.election_ms = Cow::Owned(em);
                r.sync = Cow::Owned(sync);
                r.server = Some(&j.server);
            }
            Detail::ElectionStorm(s) => {
                r.change(&s.change);
                r.sessions_expired = Cow::Borrowed(&s.sessions_expired);
                r.ephemerals_lost = &s.ephemerals_lost;
                r.service_failovers = &s.service_failovers;
                r.warnings = &s.warnings;
            }
        }
        r
    }

    fn change(&mut self, c: &Leadership) {
        self.old_leader = c.old_leader;
        self.new_leader = c.new_leader;
        self.old_epoch = c.old_epoch;
        self.new_epoch = c.new_epoch;
    }
}
