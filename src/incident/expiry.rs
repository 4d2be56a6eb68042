//! session-expiry: the leader expired a session that no failover explains (a client stalled or
//! partitioned past its timeout): the ephemerals it lost, the service role that moved, when the
//! client noticed. Runs after [`super::failover`], which claims the expiries it explains.

use super::context::{Context, CLOSE_SESSION, EXPIRED};
use super::defs::ExpiryDef;
use super::model::{Detail, Expiry, Incident, IncidentKind};
use super::roles::leader_of;
use super::steps::{close_step, step, SERVICE_ROLE};
use super::window::{from, ts};
use super::{Detector, Findings, Needs};
use crate::event::hex_id;
use crate::time::rfc3339;

const MS: i64 = 1_000_000;

/// A client learning its session expired.
const NOTICED: &str = "client.session_expired";

/// The session-expiry detector.
pub struct SessionExpiry {
    /// Its definition.
    pub def: ExpiryDef,
}

impl Detector for SessionExpiry {
    fn kind(&self) -> IncidentKind {
        IncidentKind::SessionExpiry
    }

    fn needs(&self) -> Needs {
        Needs {
            kinds: [EXPIRED, CLOSE_SESSION, NOTICED, SERVICE_ROLE]
                .iter()
                .map(|k| k.to_string())
                .collect(),
            windowed: Vec::new(),
        }
    }

    fn detect<'e>(&self, cx: &Context<'e>, found: &mut Findings<'e>) {
        let x = &self.def;
        for e in cx
            .ev
            .iter()
            .copied()
            .filter(|e| &*e.kind == EXPIRED && !cx.stale(e))
        {
            let Some(s) = e.attrs.session else { continue };
            if found.explained.contains(&s) {
                continue;
            }
            let at = ts(e);
            let mut d = Expiry {
                session: hex_id(s),
                leader: leader_of(e),
                ..Expiry::default()
            };
            let mut steps = vec![step(e, format!("{} expires session {}", e.node, hex_id(s)))];
            let mut end = at;
            match cx.closes.get(&s) {
                Some(c) => {
                    d.ephemerals_lost.extend(c.paths.iter().cloned());
                    steps.push(close_step(c, s));
                    end = end.max(ts(c));
                }
                None => d.unconfirmed.push(format!(
                    "no closeSession txn for {} is indexed: the expiry is what {} logged, not a confirmed commit",
                    hex_id(s),
                    e.node
                )),
            }
            let notice_until = at + x.notice_window_ms * MS;
            if let Some(n) = from(&cx.ev, at)
                .iter()
                .copied()
                .take_while(|n| ts(n) <= notice_until)
                .find(|n| &*n.kind == NOTICED && n.attrs.session == Some(s))
            {
                steps.push(step(
                    n,
                    format!("{} learns its session {} expired", n.node, hex_id(s)),
                ));
                end = end.max(ts(n));
            }
            let svc = cx
                .services
                .between(at, at + x.service_window_ms * MS, &[s], true);
            for st in svc.steps {
                end = end.max(st.at);
                steps.push(st);
            }
            d.service_failovers = svc.failovers;
            d.warnings = svc.warnings;
            steps.sort_by_key(|s| s.at);
            found.expiries.push(Incident {
                id: format!("session-expiry-{}", hex_id(s)),
                started_at: rfc3339(at),
                ended_at: rfc3339(end),
                steps,
                detail: Detail::SessionExpiry(d),
                start_ns: at,
                ensemble: None,
            });
        }
    }
}
