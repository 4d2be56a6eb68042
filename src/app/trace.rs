//! Sessions, transactions and incidents as distributed traces (OpenTelemetry's OTLP), built from
//! the events and incidents the other answers hold, so they can be looked at in Jaeger, Tempo or
//! Grafana.
//!
//! - **A session** is one trace: a root span `zookeeper.session` from its `createSession` to its
//!   `closeSession` or expiry (status ERROR when it expired), and under it one span per node that
//!   saw it (`zookeeper.server.session` on a server, `zookeeper.client.session` on a client),
//!   with what that node recorded (connections, disconnects, revalidations, moves, expiry, the
//!   transactions it logged) as span events. A client's connections to each server are spans of
//!   their own (`zookeeper.connection`). The ephemerals it created and lost are attributes.
//! - **A transaction** (zxid) is one trace: a root span `zookeeper.txn`, and on each node that
//!   recorded it a span holding what it recorded: the transaction in each server's log
//!   (`zookeeper.txnlog`, one per replica), the lines naming the zxid (`zookeeper.log`, a
//!   client's request and answer among them). Nothing is invented: there are no proposal or
//!   commit spans, as no log records those.
//! - **An incident** is one trace: a root span `zookeeper.incident.KIND`, and per node the phases
//!   its steps show (`zookeeper.election`, `zookeeper.sync`, `zookeeper.session_expiry`,
//!   `zookeeper.steps` for the rest), each step a span event with its evidence; the root links to
//!   the traces of the sessions it expired or moved.
//!
//! **Ids are derived**, never random: a trace's id is a hash of the ensemble and what it is
//! (`session 0x…`, `zxid 0x…`, `incident ID`), a span's id a hash of the trace's and its own
//! place, so exporting again gives the same ids and an incident links to a session's trace without
//! reading it. Attributes sit under `zookeeper.*` (the README lists them).

use std::collections::BTreeMap;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    any_value, AnyValue, ArrayValue, InstrumentationScope, KeyValue,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::span::{Event as SpanEvent, Link, SpanKind};
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};

use crate::event::{fnv1a, hex_id, session_origin, Event, DEFAULT_ENSEMBLE, KIND_LOG};
use crate::incident::{Incident, IncidentKind};
use crate::time::{self, Tz};

use super::session::lifecycle;

/// A trace's id and its root span's id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceIds {
    /// 16 bytes.
    pub trace: [u8; 16],
    /// 8 bytes.
    pub root: [u8; 8],
}

fn nonzero64(h: u64) -> u64 {
    if h == 0 {
        1
    } else {
        h
    }
}

/// The ids of the trace known as `what` in `ensemble` (`session 0x…`, `zxid 0x…`,
/// `incident ID`).
pub fn ids(ensemble: &str, what: &str) -> TraceIds {
    let key = format!("zklens/{ensemble}/{what}");
    let hi = nonzero64(fnv1a(key.as_bytes()));
    let lo = fnv1a(format!("{key}#lo").as_bytes());
    let mut trace = [0u8; 16];
    trace[..8].copy_from_slice(&hi.to_be_bytes());
    trace[8..].copy_from_slice(&lo.to_be_bytes());
    TraceIds {
        trace,
        root: span_id(&key, "root"),
    }
}

fn span_id(trace_key: &str, place: &str) -> [u8; 8] {
    nonzero64(fnv1a(format!("{trace_key}|{place}").as_bytes())).to_be_bytes()
}

/// The trace of a session.
pub fn session_ids(ensemble: &str, session: u64) -> TraceIds {
    ids(ensemble, &format!("session {}", hex_id(session)))
}

fn s(v: impl Into<String>) -> Option<AnyValue> {
    Some(AnyValue {
        value: Some(any_value::Value::StringValue(v.into())),
    })
}

fn int(v: u64) -> Option<AnyValue> {
    Some(AnyValue {
        value: Some(any_value::Value::IntValue(
            i64::try_from(v).unwrap_or(i64::MAX),
        )),
    })
}

fn strings(v: &[String]) -> Option<AnyValue> {
    Some(AnyValue {
        value: Some(any_value::Value::ArrayValue(ArrayValue {
            values: v
                .iter()
                .map(|x| AnyValue {
                    value: Some(any_value::Value::StringValue(x.clone())),
                })
                .collect(),
        })),
    })
}

fn kv(key: &str, value: Option<AnyValue>) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value,
        ..Default::default()
    }
}

/// ERROR ("session expired") for what ended in an expiry, else unset.
fn expiry_status(expired: bool) -> Status {
    if expired {
        Status {
            code: StatusCode::Error as i32,
            message: "session expired".into(),
        }
    } else {
        Status::default()
    }
}

fn ns(t: i64) -> u64 {
    u64::try_from(t).unwrap_or(0)
}

/// The ZooKeeper servers among `events`' nodes (their lines carry a myid, or they hold
/// transaction logs).
fn servers(events: &[Event]) -> std::collections::BTreeSet<String> {
    let mut out = std::collections::BTreeSet::new();
    for e in events {
        if e.myid.is_some() || e.kind.starts_with("txn.") {
            out.insert(e.node.to_string());
        }
        for r in &e.replicas {
            out.insert(r.to_string());
        }
    }
    out
}

/// A span event for one event: its kind, its time, the first line of its message and where it
/// was read.
fn span_event(e: &Event) -> SpanEvent {
    let mut attributes = vec![
        kv("zookeeper.message", s(e.headline())),
        kv("zookeeper.evidence", s(format!("{}:{}", e.source, e.line))),
        kv("zookeeper.node", s(e.node.to_string())),
    ];
    if let Some(z) = e.attrs.zxid {
        attributes.push(kv("zookeeper.zxid", s(hex_id(z))));
    }
    if let Some(p) = &e.attrs.path {
        attributes.push(kv("zookeeper.path", s(p.clone())));
    }
    if let Some(p) = &e.attrs.peer {
        attributes.push(kv("zookeeper.peer", s(p.clone())));
    }
    SpanEvent {
        time_unix_nano: ns(e.ts.unwrap_or(0)),
        name: e.kind.to_string(),
        attributes,
        ..Default::default()
    }
}

/// Spans grouped by the node that recorded them, as OTLP's resources.
#[derive(Default)]
struct Builder {
    by_node: BTreeMap<String, Vec<Span>>,
    servers: std::collections::BTreeSet<String>,
    ensemble: String,
}

impl Builder {
    fn add(&mut self, node: &str, span: Span) {
        self.by_node.entry(node.to_string()).or_default().push(span);
    }

    fn finish(self) -> ExportTraceServiceRequest {
        let resource_spans = self
            .by_node
            .into_iter()
            .map(|(node, spans)| {
                let server = self.servers.contains(&node);
                ResourceSpans {
                    resource: Some(Resource {
                        attributes: vec![
                            kv(
                                "service.name",
                                s(if server {
                                    "zookeeper".to_string()
                                } else {
                                    node.clone()
                                }),
                            ),
                            kv("service.instance.id", s(node.clone())),
                            kv("zookeeper.node", s(node.clone())),
                            kv("zookeeper.ensemble", s(self.ensemble.clone())),
                            kv(
                                "zookeeper.role",
                                s(if server { "server" } else { "client" }),
                            ),
                        ],
                        ..Default::default()
                    }),
                    scope_spans: vec![ScopeSpans {
                        scope: Some(InstrumentationScope {
                            name: "zklens".into(),
                            version: env!("CARGO_PKG_VERSION").into(),
                            ..Default::default()
                        }),
                        spans,
                        ..Default::default()
                    }],
                    ..Default::default()
                }
            })
            .collect();
        ExportTraceServiceRequest { resource_spans }
    }
}

fn ensemble_of(events: &[Event]) -> String {
    events
        .first()
        .map_or(DEFAULT_ENSEMBLE.to_string(), |e| e.ensemble.to_string())
}

/// The span of what `events` (one node's, in time order) say, from the first to the last.
fn node_span(
    ids: &TraceIds,
    key: &str,
    name: &str,
    node: &str,
    parent: [u8; 8],
    events: &[&Event],
    attributes: Vec<KeyValue>,
) -> Option<Span> {
    let t0 = events.iter().filter_map(|e| e.ts).min()?;
    let t1 = events.iter().filter_map(|e| e.ts).max()?;
    Some(Span {
        trace_id: ids.trace.to_vec(),
        span_id: span_id(key, &format!("{name}/{node}/{t0}")).to_vec(),
        parent_span_id: parent.to_vec(),
        name: name.into(),
        kind: SpanKind::Internal as i32,
        start_time_unix_nano: ns(t0),
        end_time_unix_nano: ns(t1),
        attributes,
        events: events
            .iter()
            .filter(|e| e.ts.is_some())
            .map(|e| span_event(e))
            .collect(),
        ..Default::default()
    })
}

/// A session's trace from its events (those `zklens session` finds).
pub fn session(id: u64, events: &[Event]) -> ExportTraceServiceRequest {
    let ensemble = ensemble_of(events);
    let ids = session_ids(&ensemble, id);
    let key = format!("zklens/{ensemble}/session {}", hex_id(id));
    let mut timed: Vec<&Event> = events.iter().filter(|e| e.ts.is_some()).collect();
    timed.sort_by_key(|e| e.ts);
    let life = lifecycle(id, events);
    let first = timed.first().and_then(|e| e.ts).unwrap_or(0);
    let last = timed.last().and_then(|e| e.ts).unwrap_or(0);
    // The createSession's time (0: its record had none), else the first event's.
    let start = life
        .created
        .map(|c| c.0)
        .filter(|&t| t > 0)
        .map_or(first, |t| t.min(first));
    let expired = life.closed.as_ref().is_some_and(|c| c.2)
        || life.expired_by.is_some()
        || life.client_saw_expiry.is_some();
    let end = life
        .closed
        .as_ref()
        .map(|c| c.0)
        .or(life.expired_by.as_ref().map(|e| e.0))
        .unwrap_or(last)
        .max(start);
    let outcome = if expired {
        "expired"
    } else if life.closed.is_some() {
        "closed"
    } else {
        "open"
    };
    let mut b = Builder {
        servers: servers(events),
        ensemble: ensemble.clone(),
        ..Builder::default()
    };
    // The root is the creating server's: the node that logged createSession, else the server
    // whose id is the session id's top byte.
    let origin = session_origin(id);
    let root_node = timed
        .iter()
        .find(|e| &*e.kind == "txn.createSession")
        .map(|e| e.node.to_string())
        .or_else(|| {
            timed
                .iter()
                .find(|e| e.myid == Some(origin))
                .map(|e| e.node.to_string())
        })
        .or_else(|| timed.first().map(|e| e.node.to_string()))
        .unwrap_or_else(|| format!("zk{origin}"));
    let mut attributes = vec![
        kv("zookeeper.session.id", s(hex_id(id))),
        kv("zookeeper.session.server_id", int(origin)),
        kv("zookeeper.session.outcome", s(outcome)),
        kv(
            "zookeeper.ephemerals.created",
            strings(
                &life
                    .ephemerals
                    .iter()
                    .map(|e| e.2.clone())
                    .collect::<Vec<_>>(),
            ),
        ),
        kv(
            "zookeeper.ephemerals.lost",
            strings(
                &life
                    .closed
                    .as_ref()
                    .map(|c| c.3.clone())
                    .unwrap_or_default(),
            ),
        ),
        kv("zookeeper.ensemble", s(ensemble.clone())),
    ];
    if let Some((_, z, timeout)) = life.created {
        attributes.push(kv("zookeeper.session.create_zxid", s(hex_id(z))));
        if let Some(t) = timeout {
            attributes.push(kv("zookeeper.session.timeout_ms", int(t)));
        }
    }
    if let Some(c) = &life.closed {
        attributes.push(kv("zookeeper.session.close_zxid", s(hex_id(c.1))));
    }
    b.add(
        &root_node,
        Span {
            trace_id: ids.trace.to_vec(),
            span_id: ids.root.to_vec(),
            name: "zookeeper.session".into(),
            kind: SpanKind::Server as i32,
            start_time_unix_nano: ns(start),
            end_time_unix_nano: ns(end),
            attributes,
            status: Some(expiry_status(expired)),
            ..Default::default()
        },
    );
    // One span per node that recorded something of it (a transaction counts on every server
    // whose log holds it).
    let mut by_node: BTreeMap<String, Vec<&Event>> = BTreeMap::new();
    for e in &timed {
        if &*e.kind == KIND_LOG && e.level.is_none_or(|l| l < crate::event::Level::Warn) {
            continue; // a plain line of the client's (its counter writes): not the session's life
        }
        by_node.entry(e.node.to_string()).or_default().push(e);
        for r in e.replicas.iter().filter(|r| ***r != *e.node) {
            by_node.entry(r.to_string()).or_default().push(e);
        }
    }
    for (node, evs) in &by_node {
        let server = b.servers.contains(node);
        let name = if server {
            "zookeeper.server.session"
        } else {
            "zookeeper.client.session"
        };
        let attrs = vec![
            kv("zookeeper.node", s(node.clone())),
            kv("zookeeper.session.id", s(hex_id(id))),
        ];
        let Some(span) = node_span(&ids, &key, name, node, ids.root, evs, attrs) else {
            continue;
        };
        let parent = span.span_id.clone();
        b.add(node, span);
        if server {
            continue;
        }
        // A client's connections: from each `client.connected` to its next disconnect, expiry
        // or connection.
        let mut open: Option<(&Event, Vec<&Event>)> = None;
        let close = |b: &mut Builder, c: (&Event, Vec<&Event>), end: i64| {
            let (from, evs) = c;
            let start = from.ts.unwrap_or(end);
            b.add(
                node,
                Span {
                    trace_id: ids.trace.to_vec(),
                    span_id: span_id(&key, &format!("connection/{node}/{start}")).to_vec(),
                    parent_span_id: parent.clone(),
                    name: "zookeeper.connection".into(),
                    kind: SpanKind::Client as i32,
                    start_time_unix_nano: ns(start),
                    end_time_unix_nano: ns(end.max(start)),
                    attributes: vec![
                        kv("zookeeper.node", s(node.clone())),
                        kv(
                            "zookeeper.connection.server",
                            s(from.attrs.peer.clone().unwrap_or_default()),
                        ),
                    ],
                    events: evs.iter().map(|e| span_event(e)).collect(),
                    ..Default::default()
                },
            );
        };
        for e in evs {
            let t = e.ts.unwrap_or(0);
            match &*e.kind {
                "client.connected" => {
                    if let Some(c) = open.take() {
                        close(&mut b, c, t);
                    }
                    open = Some((e, vec![e]));
                }
                "client.disconnected" | "client.session_expired" => {
                    if let Some(mut c) = open.take() {
                        c.1.push(e);
                        close(&mut b, c, t);
                    }
                }
                _ => {
                    if let Some(c) = open.as_mut() {
                        c.1.push(e);
                    }
                }
            }
        }
        if let Some(c) = open.take() {
            close(&mut b, c, end.max(last));
        }
    }
    b.finish()
}

/// A transaction's trace from its events (those `zklens zxid` finds).
pub fn zxid(zxid: u64, events: &[Event]) -> ExportTraceServiceRequest {
    let ensemble = ensemble_of(events);
    let ids = ids(&ensemble, &format!("zxid {}", hex_id(zxid)));
    let key = format!("zklens/{ensemble}/zxid {}", hex_id(zxid));
    let mut timed: Vec<&Event> = events.iter().filter(|e| e.ts.is_some()).collect();
    timed.sort_by_key(|e| e.ts);
    let first = timed.first().and_then(|e| e.ts).unwrap_or(0);
    let last = timed.last().and_then(|e| e.ts).unwrap_or(0);
    let txn = timed.iter().find(|e| e.kind.starts_with("txn."));
    let mut b = Builder {
        servers: servers(events),
        ensemble: ensemble.clone(),
        ..Builder::default()
    };
    let mut attributes = vec![
        kv("zookeeper.zxid", s(hex_id(zxid))),
        kv("zookeeper.epoch", int(zxid >> 32)),
        kv("zookeeper.counter", int(zxid & 0xffff_ffff)),
        kv("zookeeper.ensemble", s(ensemble.clone())),
    ];
    if let Some(t) = txn {
        attributes.push(kv(
            "zookeeper.txn.type",
            s(t.kind.trim_start_matches("txn.").to_string()),
        ));
        if let Some(sid) = t.attrs.session {
            attributes.push(kv("zookeeper.session.id", s(hex_id(sid))));
        }
        if let Some(p) = &t.attrs.path {
            attributes.push(kv("zookeeper.path", s(p.clone())));
        }
        attributes.push(kv(
            "zookeeper.txn.replicas",
            strings(&t.replicas.iter().map(|r| r.to_string()).collect::<Vec<_>>()),
        ));
    }
    let root_node = txn
        .map(|t| t.node.to_string())
        .or_else(|| timed.first().map(|e| e.node.to_string()))
        .unwrap_or_else(|| "unknown".into());
    b.add(
        &root_node,
        Span {
            trace_id: ids.trace.to_vec(),
            span_id: ids.root.to_vec(),
            name: "zookeeper.txn".into(),
            kind: SpanKind::Internal as i32,
            start_time_unix_nano: ns(first),
            end_time_unix_nano: ns(last.max(first)),
            attributes,
            ..Default::default()
        },
    );
    // The transaction in each server's log: one instant span per replica.
    if let Some(t) = txn {
        let at = t.ts.unwrap_or(first);
        let replicas: Vec<String> = if t.replicas.is_empty() {
            vec![t.node.to_string()]
        } else {
            t.replicas.iter().map(|r| r.to_string()).collect()
        };
        for r in replicas {
            b.add(
                &r,
                Span {
                    trace_id: ids.trace.to_vec(),
                    span_id: span_id(&key, &format!("txnlog/{r}")).to_vec(),
                    parent_span_id: ids.root.to_vec(),
                    name: "zookeeper.txnlog".into(),
                    kind: SpanKind::Internal as i32,
                    start_time_unix_nano: ns(at),
                    end_time_unix_nano: ns(at),
                    attributes: vec![
                        kv("zookeeper.node", s(r.clone())),
                        kv(
                            "zookeeper.txn.type",
                            s(t.kind.trim_start_matches("txn.").to_string()),
                        ),
                    ],
                    events: vec![span_event(t)],
                    ..Default::default()
                },
            );
        }
    }
    // The lines naming it, per node.
    let mut by_node: BTreeMap<String, Vec<&Event>> = BTreeMap::new();
    for e in timed.iter().filter(|e| !e.kind.starts_with("txn.")) {
        by_node.entry(e.node.to_string()).or_default().push(e);
    }
    for (node, evs) in &by_node {
        let attrs = vec![kv("zookeeper.node", s(node.clone()))];
        if let Some(span) = node_span(&ids, &key, "zookeeper.log", node, ids.root, evs, attrs) {
            b.add(node, span);
        }
    }
    b.finish()
}

/// The phase a step of an incident belongs to.
fn phase(kind: &str) -> &'static str {
    if kind.starts_with("election.")
        || kind.starts_with("leader.")
        || kind.starts_with("follower.")
        || kind.starts_with("quorum.")
    {
        "zookeeper.election"
    } else if kind.starts_with("sync.")
        || kind.starts_with("learner.")
        || kind.starts_with("snapshot.")
    {
        "zookeeper.sync"
    } else if kind.contains("expire") || kind == "txn.closeSession" {
        "zookeeper.session_expiry"
    } else {
        "zookeeper.steps"
    }
}

/// An incident's trace: its steps by node and phase, linked to the sessions it names.
pub fn incident(inc: &Incident) -> ExportTraceServiceRequest {
    let ensemble = inc
        .ensemble
        .clone()
        .unwrap_or_else(|| DEFAULT_ENSEMBLE.to_string());
    let ids = ids(&ensemble, &format!("incident {}", inc.id));
    let key = format!("zklens/{ensemble}/incident {}", inc.id);
    let now = time::now_nanos();
    let at = |ts: &str, fallback: i64| {
        if fallback != 0 {
            fallback
        } else {
            time::parse_time(ts, Tz::Utc, now).unwrap_or(0)
        }
    };
    let start = at(&inc.started_at, 0);
    let end = at(&inc.ended_at, 0).max(start);
    let record = serde_json::to_value(inc).unwrap_or_default();
    let mut attributes = vec![
        kv("zookeeper.incident.id", s(inc.id.clone())),
        kv("zookeeper.incident.kind", s(inc.kind().to_string())),
        kv("zookeeper.ensemble", s(ensemble.clone())),
    ];
    // Every scalar fact of the incident's record, under zookeeper.incident.
    if let Some(obj) = record.as_object() {
        for (k, v) in obj {
            if matches!(
                k.as_str(),
                "id" | "kind" | "steps" | "started_at" | "ended_at"
            ) {
                continue;
            }
            let value = match v {
                serde_json::Value::String(x) => s(x.clone()),
                serde_json::Value::Number(n) => match n.as_u64() {
                    Some(u) => int(u),
                    None => s(n.to_string()),
                },
                serde_json::Value::Bool(x) => Some(AnyValue {
                    value: Some(any_value::Value::BoolValue(*x)),
                }),
                serde_json::Value::Array(a) if a.iter().all(|x| x.is_string()) => strings(
                    &a.iter()
                        .filter_map(|x| x.as_str().map(str::to_string))
                        .collect::<Vec<_>>(),
                ),
                serde_json::Value::Null => continue,
                other => s(other.to_string()),
            };
            attributes.push(kv(&format!("zookeeper.incident.{k}"), value));
        }
    }
    // The sessions it expired or moved: links to their traces.
    let sessions = linked_sessions(inc);
    let links = sessions
        .iter()
        .map(|&sid| {
            let t = session_ids(&ensemble, sid);
            Link {
                trace_id: t.trace.to_vec(),
                span_id: t.root.to_vec(),
                attributes: vec![kv("zookeeper.session.id", s(hex_id(sid)))],
                ..Default::default()
            }
        })
        .collect();
    let mut b = Builder {
        ensemble: ensemble.clone(),
        ..Builder::default()
    };
    for st in &inc.steps {
        if st.node.starts_with("zk") || st.kind.starts_with("election.") {
            b.servers.insert(st.node.clone());
        }
    }
    let root_node = inc
        .steps
        .first()
        .map_or_else(|| "ensemble".to_string(), |s| s.node.clone());
    let is_expiry = inc.kind() == IncidentKind::SessionExpiry;
    b.add(
        &root_node,
        Span {
            trace_id: ids.trace.to_vec(),
            span_id: ids.root.to_vec(),
            name: format!("zookeeper.incident.{}", inc.kind()),
            kind: SpanKind::Internal as i32,
            start_time_unix_nano: ns(start),
            end_time_unix_nano: ns(end),
            attributes,
            links,
            status: Some(expiry_status(is_expiry)),
            ..Default::default()
        },
    );
    // Per node and phase, the steps as span events.
    let mut groups: BTreeMap<(String, &'static str), Vec<SpanEvent>> = BTreeMap::new();
    for st in &inc.steps {
        let t = at(&st.ts, st.at);
        groups
            .entry((st.node.clone(), phase(&st.kind)))
            .or_default()
            .push(SpanEvent {
                time_unix_nano: ns(t),
                name: st.kind.clone(),
                attributes: vec![
                    kv("zookeeper.message", s(st.summary.clone())),
                    kv("zookeeper.evidence", s(st.evidence.clone())),
                    kv("zookeeper.node", s(st.node.clone())),
                ],
                ..Default::default()
            });
    }
    for ((node, name), events) in groups {
        let t0 = events.iter().map(|e| e.time_unix_nano).min().unwrap_or(0);
        let t1 = events.iter().map(|e| e.time_unix_nano).max().unwrap_or(t0);
        b.add(
            &node,
            Span {
                trace_id: ids.trace.to_vec(),
                span_id: span_id(&key, &format!("{name}/{node}")).to_vec(),
                parent_span_id: ids.root.to_vec(),
                name: name.into(),
                kind: SpanKind::Internal as i32,
                start_time_unix_nano: t0,
                end_time_unix_nano: t1,
                attributes: vec![kv("zookeeper.node", s(node.clone()))],
                events,
                ..Default::default()
            },
        );
    }
    b.finish()
}

/// OTLP/JSON (the protobuf mapping OTLP/HTTP takes as `application/json`: ids in hex).
pub fn to_json(req: &ExportTraceServiceRequest) -> String {
    serde_json::to_string_pretty(req).unwrap_or_else(|_| "{}".into())
}

/// OTLP protobuf (what `POST /v1/traces` takes as `application/x-protobuf`).
pub fn to_protobuf(req: &ExportTraceServiceRequest) -> Vec<u8> {
    use prost::Message;
    req.encode_to_vec()
}

/// `http://HOST:4318` → `http://HOST:4318/v1/traces`; a URL with a path is taken as it is.
pub fn traces_url(url: &str) -> String {
    let u = url.trim_end_matches('/');
    let after_scheme = u.split_once("://").map_or(u, |(_, r)| r);
    if after_scheme.contains('/') {
        u.to_string()
    } else {
        format!("{u}/v1/traces")
    }
}

/// Sends `req` to an OTLP/HTTP endpoint as protobuf (`endpoint` as [`traces_url`] reads it).
/// `Err` says what went wrong (unreachable, or the status and the start of the answer).
pub fn send(
    endpoint: &str,
    req: &ExportTraceServiceRequest,
    timeout: std::time::Duration,
) -> std::result::Result<(), String> {
    let url = traces_url(endpoint);
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        .build()
        .into();
    let mut resp = agent
        .post(&url)
        .header("Content-Type", "application/x-protobuf")
        .send(&to_protobuf(req)[..])
        .map_err(|e| format!("{url}: {e}"))?;
    let status = resp.status().as_u16();
    if (200..300).contains(&status) {
        return Ok(());
    }
    let body = resp
        .body_mut()
        .with_config()
        .limit(4096)
        .read_to_string()
        .unwrap_or_default();
    Err(format!("{url} answered {status}: {}", body.trim()))
}

/// Spans in a request.
pub fn span_count(req: &ExportTraceServiceRequest) -> usize {
    req.resource_spans
        .iter()
        .flat_map(|r| &r.scope_spans)
        .map(|s| s.spans.len())
        .sum()
}

/// The sessions an incident links to (those it expired or moved), in order.
pub fn linked_sessions(inc: &Incident) -> Vec<u64> {
    let record = serde_json::to_value(inc).unwrap_or_default();
    let mut sessions: Vec<u64> = Vec::new();
    for field in ["sessions_expired", "sessions_moved", "session"] {
        let mut add = |x: &serde_json::Value| {
            let text = x
                .as_str()
                .or_else(|| x.get("session").and_then(|s| s.as_str()));
            if let Some(id) = text.and_then(crate::event::parse_id) {
                if !sessions.contains(&id) {
                    sessions.push(id);
                }
            }
        };
        match record.get(field) {
            Some(serde_json::Value::Array(a)) => a.iter().for_each(&mut add),
            Some(v) => add(v),
            None => {}
        }
    }
    sessions
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_traces_path_is_added_to_a_bare_endpoint() {
        assert_eq!(traces_url("http://h:4318"), "http://h:4318/v1/traces");
        assert_eq!(traces_url("http://h:4318/"), "http://h:4318/v1/traces");
        assert_eq!(
            traces_url("https://h/otlp/v1/traces"),
            "https://h/otlp/v1/traces"
        );
    }

    #[test]
    fn ids_are_derived_and_differ_by_what_and_where() {
        let a = session_ids("default", 0x10000fef8870000);
        assert_eq!(a, session_ids("default", 0x10000fef8870000));
        assert_ne!(a.trace, session_ids("prod", 0x10000fef8870000).trace);
        assert_ne!(a.trace, session_ids("default", 0x10000fef8870001).trace);
        assert_ne!(a.trace, [0; 16]);
        assert_ne!(a.root, [0; 8]);
    }
}
