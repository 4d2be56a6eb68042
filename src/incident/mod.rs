//! Incidents reconstructed from indexed events: leader failovers, session expiries, quorum
//! losses, server rejoins and election storms, each with a step-by-step timeline where every step
//! cites its evidence (`file:offset`).
//!
//! One [`Detector`] per incident kind, one file each; each declares the event kinds it reads
//! ([`Detector::needs`]: their union is what a caller loads, see [`needs`]) and takes its
//! windows from its definition (`queries/*.toml`, [`Definitions`]). Shared helpers: [`window`]
//! (time-ordered spans by binary search), [`roles`], [`connections`], [`steps`], [`services`]
//! (services' primaries from the recipes in the record), and the [`Context`] every detector
//! reads. This module runs them in order, each reading what the
//! ones before it found ([`Findings`]): quorum losses and storms read the failovers, expiries
//! skip the sessions a failover explains.
//!
//! Evidence has weight: a committed transaction (`closeSession` in a txn log) is the arbiter of
//! what the ensemble did; log lines say what their writer believed.
//!
//! Rendering (text, tables, HTML) is `crate::render`'s; this module only knows what happened.

pub mod connections;
pub mod context;
pub mod defs;
pub mod expiry;
pub mod failover;
pub mod model;
pub mod quorum_loss;
pub mod rejoin;
pub mod roles;
pub mod services;
pub mod skew;
pub mod steps;
pub mod storm;
#[cfg(test)]
mod tests;
pub mod window;

pub use context::Context;
pub use defs::{Definitions, ExpiryDef, FailoverDef, QuorumLossDef, RejoinDef, StormDef, EMBEDDED};
pub use model::{
    Detail, Expiry, Failover, Incident, IncidentKind, Leadership, Notice, QuorumLoss, Record,
    Rejoin, ServiceFailover, SessionMove, Step, Storm,
};

use crate::event::Event;

/// The event kinds a detector reads. A kind is a name (`session.expired`) or a prefix pattern
/// (`election.*`), as `kind:` takes them in a query.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Needs {
    /// Kinds read over the whole time range.
    pub kinds: Vec<String>,
    /// Kinds read only inside [`connect_windows`] (numerous: every client connection), so a
    /// caller may load them for those spans only.
    pub windowed: Vec<String>,
}

/// What one failover detection found, with the evidence later detectors read.
pub struct FailoverFinding<'e> {
    /// The failover.
    pub incident: Incident,
    /// The events from the previous epoch's formation to this one's, without those of a
    /// replaced leader that had stalled.
    pub between: Vec<&'e Event>,
    /// The first sign of the old leader's loss.
    pub loss: &'e Event,
    /// The new epoch's `quorum.formed`.
    pub formed: &'e Event,
    /// The quorum loss this failover was, if it was one (filled by the quorum-loss detector).
    pub quorum_loss: Option<Incident>,
}

/// What the detectors found so far; each reads what the ones before it wrote.
#[derive(Default)]
pub struct Findings<'e> {
    /// Leader failovers (and the quorum losses among them).
    pub failovers: Vec<FailoverFinding<'e>>,
    /// Sessions whose expiry a failover explains (no session-expiry of their own).
    pub explained: Vec<u64>,
    /// Server rejoins.
    pub rejoins: Vec<Incident>,
    /// Election storms.
    pub storms: Vec<Incident>,
    /// Session expiries.
    pub expiries: Vec<Incident>,
}

impl Findings<'_> {
    /// Every incident in start order (incidents that start together: each failover's quorum
    /// loss, the failover, rejoins, storms, expiries).
    pub fn into_incidents(self) -> Vec<Incident> {
        let mut out = Vec::new();
        for f in self.failovers {
            out.extend(f.quorum_loss);
            out.push(f.incident);
        }
        out.extend(self.rejoins);
        out.extend(self.storms);
        out.extend(self.expiries);
        out.sort_by_key(Incident::order_key);
        out
    }
}

/// Recognises one kind of incident.
pub trait Detector {
    /// The kind it recognises.
    fn kind(&self) -> IncidentKind;
    /// The event kinds it reads.
    fn needs(&self) -> Needs;
    /// Adds what it recognises in `cx` to `found`, reading what the detectors before it found.
    fn detect<'e>(&self, cx: &Context<'e>, found: &mut Findings<'e>);
}

/// The detectors, in the order they run (a detector reads what those before it found).
pub fn detectors(defs: &Definitions) -> Vec<Box<dyn Detector>> {
    vec![
        Box::new(failover::LeaderFailover {
            def: defs.failover.clone(),
        }),
        Box::new(quorum_loss::QuorumLoss {
            def: defs.quorum.clone(),
        }),
        Box::new(rejoin::ServerRejoin {
            def: defs.rejoin.clone(),
        }),
        Box::new(storm::Storm {
            def: defs.storm.clone(),
        }),
        Box::new(expiry::SessionExpiry {
            def: defs.expiry.clone(),
        }),
    ]
}

/// The event kinds detection reads under `defs`: the union of the detectors' needs and the
/// [`Context`]'s own, each kind once, in first-declared order. Kinds both read everywhere and
/// windowed are read everywhere.
pub fn needs(defs: &Definitions) -> Needs {
    let mut all = Needs {
        kinds: context::KINDS.iter().map(|k| k.to_string()).collect(),
        windowed: Vec::new(),
    };
    for d in detectors(defs) {
        let n = d.needs();
        all.kinds.extend(n.kinds);
        all.windowed.extend(n.windowed);
    }
    let mut seen = std::collections::HashSet::new();
    all.kinds.retain(|k| seen.insert(k.clone()));
    all.windowed.retain(|k| seen.insert(k.clone()));
    all
}

/// The spans in which [`detect`] reads the windowed kinds (`client.connected`: sessions that
/// move to another server during a leader failover): from each failover's start to its last
/// step plus the service window. `detect` over events without them finds the same failovers,
/// so a caller can run it once without them, then load them (and each session's connection
/// before) for these spans only.
pub fn connect_windows(found: &[Incident], defs: &Definitions) -> Vec<(i64, i64)> {
    found
        .iter()
        .filter(|i| i.kind() == IncidentKind::LeaderFailover)
        .map(|i| {
            let last = i.steps.iter().map(|s| s.at).max().unwrap_or(i.start_ns);
            let hi = last.max(i.start_ns) + defs.failover.service_window_ms * 1_000_000;
            (i.start_ns, hi.saturating_add(1))
        })
        .collect()
}

/// Detects incidents in events (any order; only the kinds of [`needs`] matter).
///
/// Each ensemble's events are read apart from the others' (two ensembles' servers, epochs,
/// zxids and sessions are unrelated, even when their logs overlap in time); an incident outside
/// the default ensemble carries its name, and its id ends in `@NAME`.
pub fn detect(events: &[Event], defs: &Definitions) -> Vec<Incident> {
    let mut parts: Vec<(&str, Vec<&Event>)> = Vec::new();
    for e in events {
        match parts.iter_mut().find(|p| *p.0 == *e.ensemble) {
            Some(p) => p.1.push(e),
            None => parts.push((&e.ensemble, vec![e])),
        }
    }
    let mut out = Vec::new();
    for (ensemble, part) in parts {
        let cx = Context::of(part, &defs.recipes);
        let mut found = Findings::default();
        for d in detectors(defs) {
            d.detect(&cx, &mut found);
        }
        let mut incidents = found.into_incidents();
        if !crate::event::is_default_ensemble(ensemble) {
            for i in &mut incidents {
                i.id = format!("{}@{ensemble}", i.id);
                i.ensemble = Some(ensemble.to_string());
            }
        }
        out.extend(incidents);
    }
    out.sort_by(|a, b| a.order_key().cmp(&b.order_key()).then(a.id.cmp(&b.id)));
    out
}
