//! Incident definitions: the tunable part of each detector (windows, which kinds count as
//! evidence), read from `queries/*.toml`, embedded and overridable at run time.
//!
//! Every key of a definition is declared here and unknown keys are refused, so a typo in a
//! tuned copy is an error naming the file instead of a value silently left at its default.

use std::collections::BTreeMap;
use std::path::Path;

use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::error::{Error, Result};

/// The embedded incident definitions (`queries/`).
pub const EMBEDDED: &[(&str, &str)] = &[
    (
        "leader-failover.toml",
        include_str!("../../queries/leader-failover.toml"),
    ),
    (
        "session-expiry.toml",
        include_str!("../../queries/session-expiry.toml"),
    ),
    (
        "quorum-loss.toml",
        include_str!("../../queries/quorum-loss.toml"),
    ),
    (
        "server-rejoin.toml",
        include_str!("../../queries/server-rejoin.toml"),
    ),
    (
        "election-storm.toml",
        include_str!("../../queries/election-storm.toml"),
    ),
];

/// Tunable parameters of the leader-failover definition.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailoverDef {
    /// The incident kind the file defines (informative).
    #[serde(default)]
    pub kind: Option<String>,
    /// What it recognises, in words (informative).
    #[serde(default)]
    pub description: Option<String>,
    /// Kinds that show the old leader was lost.
    pub loss_kinds: Vec<String>,
    /// An expiry counts when within timeout × this factor after formation...
    pub expiry_factor: f64,
    /// ... plus this slack.
    pub expiry_slack_ms: i64,
    /// Role changes this long after formation count.
    pub service_window_ms: i64,
    /// Election and sync steps are looked for up to this long after formation.
    pub steps_window_ms: i64,
    /// A server's `election.took` this long after formation is part of the election.
    pub election_window_ms: i64,
    /// A follower's DIFF/SNAP/TRUNC this long after formation is its sync with the new leader.
    pub sync_window_ms: i64,
    /// A replaced leader's DIFF/SNAP/TRUNC this long after it follows is its sync.
    pub old_leader_sync_window_ms: i64,
}

/// Tunable parameters of the quorum-loss definition.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuorumLossDef {
    /// The incident kind the file defines (informative).
    #[serde(default)]
    pub kind: Option<String>,
    /// What it recognises, in words (informative).
    #[serde(default)]
    pub description: Option<String>,
    /// Kinds that show the ensemble could not form a quorum.
    pub evidence_kinds: Vec<String>,
    /// An election's notification timeout is evidence only from this long on (the timeout
    /// doubles from 200 ms while votes do not come: one short timeout is a slow election).
    #[serde(default = "default_min_notification_timeout_ms")]
    pub min_notification_timeout_ms: u64,
}

fn default_min_notification_timeout_ms() -> u64 {
    1600
}

/// Tunable parameters of the election-storm definition.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StormDef {
    /// The incident kind the file defines (informative).
    #[serde(default)]
    pub kind: Option<String>,
    /// What it recognises, in words (informative).
    #[serde(default)]
    pub description: Option<String>,
    /// The window.
    pub window_ms: i64,
    /// Failovers within it that make a storm.
    pub min_failovers: usize,
}

/// Tunable parameters of the server-rejoin definition.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RejoinDef {
    /// The incident kind the file defines (informative).
    #[serde(default)]
    pub kind: Option<String>,
    /// What it recognises, in words (informative).
    #[serde(default)]
    pub description: Option<String>,
    /// A FOLLOWING this close to a new epoch's formation is part of that election, not a
    /// rejoin; the server's sync and up-to-date lines are looked for this long after it.
    pub formation_margin_ms: i64,
    /// How far back the server's start is looked for.
    pub max_start_ms: i64,
}

/// Tunable parameters of the session-expiry definition.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpiryDef {
    /// The incident kind the file defines (informative).
    #[serde(default)]
    pub kind: Option<String>,
    /// What it recognises, in words (informative).
    #[serde(default)]
    pub description: Option<String>,
    /// Role changes this long after the expiry count.
    pub service_window_ms: i64,
    /// How long after the expiry the client's notice is looked for.
    pub notice_window_ms: i64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DefFile {
    incident: toml::Table,
}

/// All definitions.
#[derive(Debug, Clone)]
pub struct Definitions {
    /// leader-failover.
    pub failover: FailoverDef,
    /// session-expiry.
    pub expiry: ExpiryDef,
    /// quorum-loss.
    pub quorum: QuorumLossDef,
    /// server-rejoin.
    pub rejoin: RejoinDef,
    /// election-storm.
    pub storm: StormDef,
    /// The recipes whose holders are the services' primaries (`recipes.toml`).
    pub recipes: crate::recipe::Recipes,
}

impl Definitions {
    /// How far (ns) any definition reaches from an incident's evidence to more of it: the
    /// longest of their windows. Incremental detection reads this much before what is new.
    pub fn reach_ns(&self) -> i64 {
        let f = &self.failover;
        [
            f.expiry_slack_ms,
            f.service_window_ms,
            f.steps_window_ms,
            f.election_window_ms,
            f.sync_window_ms,
            f.old_leader_sync_window_ms,
            self.storm.window_ms,
            self.rejoin
                .formation_margin_ms
                .saturating_add(self.rejoin.max_start_ms),
            self.expiry.service_window_ms,
            self.expiry.notice_window_ms,
        ]
        .into_iter()
        .max()
        .unwrap_or(0)
        .max(0)
        .saturating_mul(1_000_000)
    }

    /// The embedded definitions, overridden by same-named files in `dirs` (the last wins).
    /// A file that is not valid TOML, lacks a key or has one no definition declares is an
    /// [`Error::Format`] naming it.
    pub fn load(dirs: &[impl AsRef<Path>]) -> Result<Definitions> {
        let mut texts: BTreeMap<&str, (String, String)> = EMBEDDED
            .iter()
            .map(|(n, t)| (*n, (format!("embedded:{n}"), t.to_string())))
            .collect();
        for d in dirs {
            for name in EMBEDDED.iter().map(|(n, _)| *n) {
                let p = d.as_ref().join(name);
                if p.exists() {
                    let t = std::fs::read_to_string(&p).map_err(|e| Error::io(&p, e))?;
                    texts.insert(name, (p.display().to_string(), t));
                }
            }
        }
        let mut recipes = (
            "embedded:recipes.toml".to_string(),
            crate::recipe::EMBEDDED.to_string(),
        );
        for d in dirs {
            let p = d.as_ref().join("recipes.toml");
            if p.exists() {
                let t = std::fs::read_to_string(&p).map_err(|e| Error::io(&p, e))?;
                recipes = (p.display().to_string(), t);
            }
        }
        Ok(Definitions {
            recipes: crate::recipe::load(&recipes.0, &recipes.1)?,
            failover: parse(&texts, "leader-failover.toml")?,
            expiry: parse(&texts, "session-expiry.toml")?,
            quorum: parse(&texts, "quorum-loss.toml")?,
            rejoin: parse(&texts, "server-rejoin.toml")?,
            storm: parse(&texts, "election-storm.toml")?,
        })
    }
}

/// The `[incident]` table of definition file `name` as `T`.
fn parse<T: DeserializeOwned>(texts: &BTreeMap<&str, (String, String)>, name: &str) -> Result<T> {
    let (origin, text) = texts.get(name).cloned().unwrap_or_default();
    let bad = |e: toml::de::Error| Error::Format {
        origin: origin.clone(),
        reason: e.to_string(),
    };
    let f: DefFile = toml::from_str(&text).map_err(bad)?;
    f.incident.try_into().map_err(bad)
}
