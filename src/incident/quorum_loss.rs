//! quorum-loss: between a leader's loss and the next quorum the ensemble could not serve, and
//! the interval shows why (a leader without a quorum, elections timing out). Read from each
//! failover's interval, so it runs after [`super::failover`].

use super::context::Context;
use super::defs::QuorumLossDef;
use super::model::{Detail, Incident, IncidentKind, QuorumLoss as Loss};
use super::roles::STEP_DOWN_KINDS;
use super::steps::step;
use super::{Detector, Findings, Needs};
use crate::event::Event;
use crate::time::rfc3339;

/// An election's notification timeout (how long a server waited for votes).
const NOTIFICATION_TIMEOUT: &str = "election.notification_timeout";

/// The quorum-loss detector.
pub struct QuorumLoss {
    /// Its definition.
    pub def: QuorumLossDef,
}

impl Detector for QuorumLoss {
    fn kind(&self) -> IncidentKind {
        IncidentKind::QuorumLoss
    }

    fn needs(&self) -> Needs {
        let mut kinds: Vec<String> = ["election.leading"]
            .iter()
            .chain(STEP_DOWN_KINDS)
            .map(|k| k.to_string())
            .collect();
        kinds.extend(self.def.evidence_kinds.iter().cloned());
        Needs {
            kinds,
            windowed: Vec::new(),
        }
    }

    fn detect<'e>(&self, _cx: &Context<'e>, found: &mut Findings<'e>) {
        for f in &mut found.failovers {
            f.quorum_loss = self.quorum_loss(&f.between, f.loss, f.formed, &f.incident);
        }
    }
}

impl QuorumLoss {
    fn quorum_loss(
        &self,
        between: &[&Event],
        loss: &Event,
        formed: &Event,
        failover: &Incident,
    ) -> Option<Incident> {
        let def = &self.def;
        let evidence: Vec<&Event> = between
            .iter()
            .copied()
            .filter(|e| def.evidence_kinds.iter().any(|k| k == &*e.kind))
            .filter(|e| {
                &*e.kind != NOTIFICATION_TIMEOUT
                    || e.attrs.duration_ms.unwrap_or(0) >= def.min_notification_timeout_ms
            })
            .collect();
        if evidence.is_empty() {
            return None;
        }
        let Detail::LeaderFailover(fo) = &failover.detail else {
            return None;
        };
        let new_epoch = fo.change.new_epoch.unwrap_or(0);
        let (start, end) = (loss.ts.unwrap_or(0), formed.ts.unwrap_or(0));
        let mut steps = vec![step(loss, format!("leader lost: {}", loss.headline()))];
        // A server that declared itself leader without the quorum to back it (it shut down
        // again).
        let gave_up = |l: &Event| {
            between
                .iter()
                .any(|s| s.node == l.node && s.ts > l.ts && STEP_DOWN_KINDS.contains(&&*s.kind))
        };
        for e in between
            .iter()
            .copied()
            .filter(|e| &*e.kind == "election.leading" && gave_up(e))
        {
            steps.push(step(
                e,
                format!("{} tries to lead without a quorum", e.node),
            ));
        }
        let mut timeouts = 0;
        for e in &evidence {
            if &*e.kind == NOTIFICATION_TIMEOUT {
                timeouts += 1;
                if timeouts > 1 {
                    continue;
                }
            }
            steps.push(step(e, format!("{}: {}", e.node, e.headline())));
        }
        steps.push(step(
            formed,
            format!("{} forms a quorum again (epoch {new_epoch})", formed.node),
        ));
        steps.sort_by_key(|s| s.at);
        Some(Incident {
            id: format!("quorum-loss-epoch-{new_epoch}"),
            started_at: rfc3339(start),
            ended_at: rfc3339(end),
            steps,
            detail: Detail::QuorumLoss(Loss {
                change: fo.change,
                election_ms: fo.election_ms.clone(),
                unavailable_ms: u64::try_from((end - start) / 1_000_000).ok(),
            }),
            start_ns: start,
            ensemble: None,
        })
    }
}
