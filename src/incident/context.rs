//! What every detector reads: the timed events in time order, and what is derived from them
//! once for all (formations, roles, connections, committed closeSession txns, timeouts).

use std::collections::BTreeMap;

use super::connections::{connections, Connections};
use super::roles::Roles;
use super::services::Services;
use super::window::ts;
use crate::event::Event;
use crate::recipe::Recipes;

/// A leader's quorum line: an epoch formed.
pub const FORMED: &str = "quorum.formed";
/// A committed (or logged) closeSession txn.
pub const CLOSE_SESSION: &str = "txn.closeSession";
/// A createSession txn (the session's timeout).
pub const CREATE_SESSION: &str = "txn.createSession";
/// A leader expiring a session.
pub const EXPIRED: &str = "session.expired";

/// The kinds [`Context`] itself reads (each detector declares the rest): formations, sessions'
/// creation and close, and the recipes' transactions ([`crate::recipe::NEEDS`]) with the
/// services' role lines.
pub const KINDS: &[&str] = &[
    FORMED,
    CLOSE_SESSION,
    CREATE_SESSION,
    "txn.create",
    "txn.create2",
    "txn.delete",
    "snapshot.session",
    crate::recipe::SERVICE_ROLE,
];

/// The events of one detection and what is derived from them.
pub struct Context<'e> {
    /// The events that have a time, in time order (then by offset).
    pub ev: Vec<&'e Event>,
    /// Every `quorum.formed`, in time order.
    pub formed: Vec<&'e Event>,
    /// Each server's roles over time.
    pub roles: Roles<'e>,
    /// Each session's connections.
    pub conns: Connections<'e>,
    /// Each session's committed closeSession txn.
    pub closes: BTreeMap<u64, &'e Event>,
    /// Each session's timeout (ms) from its createSession txn.
    pub timeouts: BTreeMap<u64, u64>,
    /// The recipes' holders and the services' role lines.
    pub services: Services<'e>,
}

impl<'e> Context<'e> {
    /// Orders `events` and derives what the detectors share, the recipes read with `recipes`.
    pub fn new(events: &'e [Event], recipes: &Recipes) -> Context<'e> {
        Context::of(events.iter().collect(), recipes)
    }

    /// [`Context::new`] over events given by reference (one ensemble's share of a detection).
    pub fn of(events: Vec<&'e Event>, recipes: &Recipes) -> Context<'e> {
        let mut ev = events;
        ev.retain(|e| e.ts.is_some());
        ev.sort_by_key(|e| (e.ts, e.offset));
        let formed: Vec<&Event> = ev.iter().copied().filter(|e| &*e.kind == FORMED).collect();
        let roles = Roles::new(&ev);
        let conns = connections(&ev);
        let services = Services::new(&ev, recipes);
        let mut cx = Context {
            ev,
            formed,
            roles,
            conns,
            closes: BTreeMap::new(),
            timeouts: BTreeMap::new(),
            services,
        };
        let closes = cx
            .ev
            .iter()
            .filter(|e| &*e.kind == CLOSE_SESSION && cx.committed(e))
            .filter_map(|e| e.attrs.session.map(|s| (s, *e)))
            .collect();
        cx.closes = closes;
        cx.timeouts = cx
            .ev
            .iter()
            .filter(|e| &*e.kind == CREATE_SESSION)
            .filter_map(|e| Some((e.attrs.session?, e.attrs.timeout_ms?)))
            .collect();
        cx
    }

    /// The epoch formed last at or before `t` (its leader's quorum line).
    pub fn formed_before(&self, t: i64) -> Option<&'e Event> {
        self.formed.iter().copied().rfind(|f| ts(f) <= t)
    }

    /// An expiry (or any line) logged by the leader of an earlier epoch after a newer one
    /// formed (it stalled and resumed without knowing): no quorum will commit it.
    pub fn stale(&self, e: &Event) -> bool {
        self.formed_before(ts(e))
            .is_some_and(|f| self.roles.stale(e, f))
    }

    /// A txn of an earlier epoch than the one formed before it was written sits in the log of a
    /// leader that had been replaced (a SNAP sync leaves it there): it was never committed.
    fn committed(&self, e: &Event) -> bool {
        match (
            e.attrs.zxid,
            self.formed_before(ts(e)).and_then(|f| f.attrs.zxid),
        ) {
            (Some(z), Some(f)) => z >> 32 >= f >> 32,
            _ => true,
        }
    }
}
