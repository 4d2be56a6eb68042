//! election-storm: many failovers in a short window. Read from the failovers, so it runs after
//! [`super::failover`].

use super::context::Context;
use super::defs::StormDef;
use super::model::{Detail, Incident, IncidentKind, Leadership, Storm as Run};
use super::{Detector, Findings, Needs};

/// The election-storm detector.
pub struct Storm {
    /// Its definition.
    pub def: StormDef,
}

impl Detector for Storm {
    fn kind(&self) -> IncidentKind {
        IncidentKind::ElectionStorm
    }

    fn needs(&self) -> Needs {
        Needs::default()
    }

    fn detect<'e>(&self, _cx: &Context<'e>, found: &mut Findings<'e>) {
        let fo: Vec<(&Incident, &super::model::Failover)> = found
            .failovers
            .iter()
            .filter_map(|f| match &f.incident.detail {
                Detail::LeaderFailover(d) => Some((&f.incident, d)),
                _ => None,
            })
            .collect();
        let w = self.def.window_ms * 1_000_000;
        let mut out = Vec::new();
        let mut i = 0;
        while i < fo.len() {
            let mut j = i;
            while j + 1 < fo.len() && fo[j + 1].0.start_ns - fo[i].0.start_ns <= w {
                j += 1;
            }
            let n = j - i + 1;
            if n >= self.def.min_failovers.max(2) {
                let group = &fo[i..=j];
                let (first, last) = (group[0], group[n - 1]);
                out.push(Incident {
                    ensemble: None,
                    id: format!(
                        "election-storm-epoch-{}-{}",
                        first.1.change.new_epoch.unwrap_or(0),
                        last.1.change.new_epoch.unwrap_or(0)
                    ),
                    started_at: first.0.started_at.clone(),
                    ended_at: last.0.ended_at.clone(),
                    steps: group
                        .iter()
                        .filter_map(|f| f.0.steps.first().cloned())
                        .collect(),
                    detail: Detail::ElectionStorm(Run {
                        change: Leadership {
                            old_leader: first.1.change.old_leader,
                            new_leader: last.1.change.new_leader,
                            old_epoch: first.1.change.old_epoch,
                            new_epoch: last.1.change.new_epoch,
                        },
                        sessions_expired: group
                            .iter()
                            .flat_map(|f| f.1.sessions_expired.clone())
                            .collect(),
                        ephemerals_lost: group
                            .iter()
                            .flat_map(|f| f.1.ephemerals_lost.clone())
                            .collect(),
                        service_failovers: group
                            .iter()
                            .flat_map(|f| f.1.service_failovers.clone())
                            .collect(),
                        warnings: group.iter().flat_map(|f| f.1.warnings.clone()).collect(),
                    }),
                    start_ns: first.0.start_ns,
                });
                i = j + 1;
            } else {
                i += 1;
            }
        }
        found.storms = out;
    }
}
