//! The application layer: running queries against an opened index, the one implementation
//! behind the CLI's query commands, the service's HTTP API and the CLI's `--server` client, so
//! all of them answer the same question the same way.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::path::PathBuf;

use crate::error::{Error, Result};
use crate::event::{hex_id, Event};
use crate::incident::{self, skew::Skew, Incident};
use crate::index::IndexHandle;
use crate::time::Tz;
use tantivy::query::{BooleanQuery, Occur, Query, RangeQuery};
use tantivy::Term;

use crate::query::{mentions_incident, parse, resolve_incidents, Ast, Compiler};
use crate::time;

mod answer;
mod backend;
#[cfg(feature = "lake")]
mod lake;
pub mod session;
#[cfg(feature = "sql")]
pub mod sql;
pub mod trace;

pub use answer::{
    Budget, Filter, Found, IncidentEntry, IncidentReport, Indexed, IndexedSource, SessionAnswer,
    Window, ZxidAnswer,
};
pub use backend::{Backend, Local};
#[cfg(feature = "lake")]
pub use lake::Lake;

/// Adds `since`/`until` bounds to a query.
pub fn bounded(ast: Ast, since: Option<&str>, until: Option<&str>, tz: Tz) -> Result<Ast> {
    let now = time::now_nanos();
    let mut clauses = vec![ast];
    if let Some(t) = since {
        time::parse_time(t, tz, now)?;
        clauses.push(Ast::Range {
            field: "ts".into(),
            lo: Bound::Included(t.to_string()),
            hi: Bound::Unbounded,
        });
    }
    if let Some(t) = until {
        time::parse_time(t, tz, now)?;
        clauses.push(Ast::Range {
            field: "ts".into(),
            lo: Bound::Unbounded,
            hi: Bound::Excluded(t.to_string()),
        });
    }
    Ok(if clauses.len() == 1 {
        clauses.remove(0)
    } else {
        Ast::And(clauses)
    })
}

/// Runs `ast` (already bounded) against the index.
pub fn run(
    idx: &IndexHandle,
    ast: &Ast,
    tz: Tz,
    limit: Option<usize>,
    count: bool,
) -> Result<Found> {
    run_within(idx, ast, tz, limit, count, &Budget::default())
}

/// Events read from the store at a time when a budget is set: between two runs the deadline
/// is checked and the answer's size is added up, so a cut answer never read much past it.
const BUDGET_FETCH_RUN: usize = 256;

/// About how many bytes `e` takes in an answer: its text fields (JSON adds some per field).
pub fn event_bytes(e: &Event) -> usize {
    let opt = |s: &Option<std::sync::Arc<str>>| s.as_deref().map_or(0, str::len);
    128 + e.message.len()
        + e.node.len()
        + e.source.len()
        + e.kind.len()
        + opt(&e.thread)
        + opt(&e.logger)
        + e.paths.iter().map(String::len).sum::<usize>()
        + e.replicas.iter().map(|r| r.len()).sum::<usize>()
}

/// Fails with [`Error::Budget`] once `b`'s deadline has passed (`what`: the step reached).
fn in_time(b: &Budget, what: &str) -> Result<()> {
    match b.deadline {
        Some(d) if std::time::Instant::now() >= d => Err(Error::Budget(format!(
            "the request ran out of its time budget {what}"
        ))),
        _ => Ok(()),
    }
}

/// Runs `ast` (already bounded) against the index within `budget`: its deadline is checked
/// between steps, and its byte budget cuts the events read (`truncated`).
pub fn run_within(
    idx: &IndexHandle,
    ast: &Ast,
    tz: Tz,
    limit: Option<usize>,
    count: bool,
    budget: &Budget,
) -> Result<Found> {
    let searcher = idx.searcher();
    let q = Compiler::new(idx, &searcher, tz).compile(ast)?;
    in_time(budget, "after compiling the query")?;
    let hits = idx.search_within(
        q.as_ref(),
        if count { Some(0) } else { limit },
        budget.deadline,
    )?;
    if hits.interrupted {
        return Err(Error::Budget(format!(
            "the request ran out of its time budget while searching (stopped after {} documents)",
            hits.visited
        )));
    }
    in_time(budget, "after searching")?;
    let addrs: Vec<u64> = hits.hits.iter().map(|h| h.1).collect();
    let mut truncated = false;
    let events = if count {
        Vec::new()
    } else if *budget == Budget::default() {
        idx.fetch(&addrs)?
    } else {
        let max = budget.max_bytes.unwrap_or(usize::MAX);
        let (mut events, mut bytes) = (Vec::new(), 0usize);
        'runs: for run in addrs.chunks(BUDGET_FETCH_RUN) {
            for e in idx.fetch(run)? {
                bytes = bytes.saturating_add(event_bytes(&e));
                if bytes > max {
                    truncated = true;
                    break 'runs;
                }
                events.push(e);
            }
            in_time(budget, "while reading the events found")?;
        }
        events
    };
    Ok(Found {
        total: hits.total,
        events,
        truncated,
    })
}

/// Parses `query`, resolves its `incident:ID` terms (with the incident definitions of
/// `queries`), bounds it by the filter's window and runs it.
pub fn search(idx: &IndexHandle, query: &str, f: &Filter, queries: &[PathBuf]) -> Result<Found> {
    let ast = with_incidents(idx, parse(query)?, queries)?;
    filtered(idx, ast, f)
}

/// Events read from the store at a time by an export.
#[cfg(feature = "lake")]
const EXPORT_RUN: usize = 8192;

/// Exports every event `query` matches within `f`'s window (its limit does not apply) into the
/// lake directory `out`, each in its ensemble's partition (see [`crate::lake`]). Events are
/// read in time order,
/// a run at a time, so memory holds the matches' addresses and one run of events.
#[cfg(feature = "lake")]
pub fn export(
    idx: &IndexHandle,
    query: &str,
    f: &Filter,
    queries: &[PathBuf],
    out: &std::path::Path,
    format: crate::lake::ExportFormat,
) -> Result<crate::lake::ExportReport> {
    let w = &f.window;
    let ast = with_incidents(idx, parse(query)?, queries)?;
    let ast = bounded(ast, w.since.as_deref(), w.until.as_deref(), w.tz)?;
    let searcher = idx.searcher();
    let q = Compiler::new(idx, &searcher, w.tz).compile(&ast)?;
    let hits = idx.search_within(q.as_ref(), None, f.budget.deadline)?;
    if hits.interrupted {
        return Err(Error::Budget(
            "the export ran out of its time budget while searching".into(),
        ));
    }
    let formats = idx.state().checkpoints.formats();
    // The export's name: the same question asked again replaces its own files.
    let what = format!("{query}\u{1f}{:?}\u{1f}{:?}", w.since, w.until);
    let mut ex = crate::lake::Exporter::new(out, format, &what, formats)?;
    for run in hits.hits.chunks(EXPORT_RUN) {
        in_time(&f.budget, "while exporting")?;
        let addrs: Vec<u64> = run.iter().map(|h| h.1).collect();
        for e in idx.fetch(&addrs)? {
            ex.push(&e)?;
        }
    }
    ex.finish()
}

/// Runs `ast` bounded by the filter's window, with its limit.
fn filtered(idx: &IndexHandle, ast: Ast, f: &Filter) -> Result<Found> {
    let w = &f.window;
    let ast = bounded(ast, w.since.as_deref(), w.until.as_deref(), w.tz)?;
    run_within(idx, &ast, w.tz, f.limit, f.count, &f.budget)
}

/// Everything matching one compiled query text (no limit), within `budget`'s deadline (its
/// byte budget is for answers, not for what an analysis reads: it is not applied).
fn all(idx: &IndexHandle, q: &str, budget: &Budget) -> Result<Vec<Event>> {
    let budget = Budget {
        max_bytes: None,
        ..*budget
    };
    Ok(run_within(idx, &parse(q)?, Tz::Utc, None, false, &budget)?.events)
}

/// Every recipe parent's holder timeline, from the committed transactions in the index, with
/// the naming schemes of `queries` (`recipes.toml`, else the embedded ones).
pub fn recipes(idx: &IndexHandle, queries: &[PathBuf]) -> Result<Vec<crate::recipe::Timeline>> {
    recipes_within(idx, queries, &Budget::default())
}

/// [`recipes`], stopping with [`Error::Budget`] once `budget`'s deadline has passed.
pub fn recipes_within(
    idx: &IndexHandle,
    queries: &[PathBuf],
    budget: &Budget,
) -> Result<Vec<crate::recipe::Timeline>> {
    let q: Vec<String> = crate::recipe::NEEDS
        .iter()
        .chain(&[crate::recipe::SERVICE_ROLE])
        .map(|k| format!("kind:{k}"))
        .collect();
    let events = all(idx, &q.join(" OR "), budget)?;
    let defs = incident::Definitions::load(queries)?;
    Ok(crate::recipe::read(&events, &defs.recipes))
}

/// The events incidents are built from, and the incidents they show.
///
/// Client connections are most of the skeleton's events on a busy ensemble (every client's
/// `Session establishment complete`), and the detector reads them only while a failover moves
/// sessions. So: detect once without them, then load them for the failovers' spans only, with
/// each of those sessions' connection before the span (where it came from), and detect again.
/// Memory and time then follow the incidents, not the corpus.
pub fn incidents(idx: &IndexHandle, queries: &[PathBuf]) -> Result<Vec<Incident>> {
    let defs = incident::Definitions::load(queries)?;
    let searcher = idx.searcher();
    let compiler = Compiler::new(idx, &searcher, Tz::Utc);
    let needs = incident::needs(&defs);
    let skeleton = compiler.compile(&skeleton(&needs))?;
    let hits = idx.search(skeleton.as_ref(), None)?;
    let events = idx.fetch(&hits.hits.iter().map(|h| h.1).collect::<Vec<_>>())?;
    with_connections(idx, &compiler, &needs, &defs, events)
}

/// What [`incidents_since`] found.
#[derive(Debug)]
pub struct Recent {
    /// The incidents that start at or after [`Recent::settled`], as the whole index shows them.
    pub incidents: Vec<Incident>,
    /// Incidents that start before this time (ns) are as a detection before the new data found
    /// them: nothing at or after `from` can change them.
    pub settled: i64,
    /// The events detection read.
    pub events: usize,
}

/// Incidents that events at or after `from` (ns) may have created or changed, read from the
/// index in time proportional to what lies after `from`, not to the index: the live detector's
/// step after its first full run.
///
/// The definitions reach at most [`incident::Definitions::reach_ns`] from one piece of evidence
/// to the next. So an incident new data can change starts at or after the last epoch formed
/// before `from − reach` (`settled`), and its evidence lies after `settled − reach`: the
/// skeleton is read from there. What detection needs from earlier is looked up for the entities
/// it names: each session's creation and transactions (timeouts, its ephemerals and service
/// registration) and each recipe parent's candidates (who holds it), until nothing new is named.
/// Together with the incidents a full detection found before `settled`, the answer is the full
/// detection's (`tests/incremental.rs` checks it on the recorded ensembles).
pub fn incidents_since(idx: &IndexHandle, queries: &[PathBuf], from: i64) -> Result<Recent> {
    let defs = incident::Definitions::load(queries)?;
    let reach = defs.reach_ns();
    let searcher = idx.searcher();
    let compiler = Compiler::new(idx, &searcher, Tz::Utc);
    let needs = incident::needs(&defs);
    let skeleton = compiler.compile(&skeleton(&needs))?;
    // Formations are one per epoch: their times come from the fast column, no event is read.
    let formed = compiler.compile(&any_kind([incident::context::FORMED]))?;
    let formations = idx.search(formed.as_ref(), None)?.hits;
    let before = |t: i64| {
        formations
            .iter()
            .map(|h| h.0)
            .filter(|&f| f != i64::MIN && f <= t)
            .max()
    };
    let edge = from.saturating_sub(reach);
    let settled = before(edge).unwrap_or(edge);
    let lo = settled.saturating_sub(reach);
    // From `lo` on through the time buckets: the work follows the events after `lo`.
    let q = BooleanQuery::new(vec![
        (Occur::Must, skeleton.box_clone()),
        (
            Occur::Must,
            crate::index::time_query(
                idx.fields(),
                Some(&searcher),
                Bound::Included(lo),
                Bound::Unbounded,
            ),
        ),
    ]);
    let mut seen = std::collections::HashSet::new();
    let mut addrs: Vec<u64> = idx.search(&q, None)?.hits.iter().map(|h| h.1).collect();
    // The epoch open at `lo` (whether a txn read before it was committed, a stale leader).
    if let Some(open) = before(lo) {
        addrs.extend(formations.iter().filter(|h| h.0 >= open).map(|h| h.1));
    }
    addrs.retain(|a| seen.insert(*a));
    let mut events = idx.fetch(&addrs)?;
    // Each server's role as `lo` finds it (a leader replaced without knowing is stale): its last
    // role decision before `lo`. Role decisions are a few per election, like formations.
    // Servers are known by ensemble and name: two ensembles' `zk1` are two servers.
    let nodes: std::collections::BTreeSet<(String, String)> = events
        .iter()
        .map(|e| (e.ensemble.to_string(), e.node.to_string()))
        .collect();
    let several = nodes
        .iter()
        .any(|n| n.0 != nodes.first().map_or("", |f| &f.0));
    let roles = compiler.compile(&any_kind(incident::roles::ROLE_KINDS.iter().copied()))?;
    let mut last_roles = Vec::new();
    for (ensemble, node) in &nodes {
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = vec![
            (Occur::Must, roles.box_clone()),
            (
                Occur::Must,
                Box::new(tantivy::query::TermQuery::new(
                    Term::from_field_text(idx.fields().node, node),
                    tantivy::schema::IndexRecordOption::Basic,
                )),
            ),
        ];
        if several || !crate::event::is_default_ensemble(ensemble) {
            clauses.push((
                Occur::Must,
                compiler.compile(&Ast::Term {
                    field: Some("ensemble".into()),
                    value: ensemble.clone(),
                    quoted: true,
                })?,
            ));
        }
        let q = BooleanQuery::new(clauses);
        // Hits come in time order: the last before `lo` is the latest decision.
        if let Some(&(_, a)) = idx.search(&q, None)?.hits.iter().rfind(|h| h.0 < lo) {
            if seen.insert(a) {
                last_roles.push(a);
            }
        }
    }
    events.extend(idx.fetch(&last_roles)?);
    backfill(
        idx,
        skeleton.as_ref(),
        &defs.recipes.schemes,
        lo,
        &mut events,
        &mut seen,
    )?;
    let read = events.len();
    let incidents = with_connections(idx, &compiler, &needs, &defs, events)?
        .into_iter()
        .filter(|i| i.start_ns >= settled)
        .collect();
    Ok(Recent {
        incidents,
        settled,
        events: read,
    })
}

/// Adds to `events` (read from `lo` on) the skeleton events before `lo` about what they name:
/// the sessions (their creation, transactions, expiry) and the recipe parents (their
/// candidates' creates and deletes), again for what those name, until nothing new is named.
fn backfill(
    idx: &IndexHandle,
    skeleton: &dyn Query,
    schemes: &[crate::recipe::Scheme],
    lo: i64,
    events: &mut Vec<Event>,
    seen: &mut std::collections::HashSet<u64>,
) -> Result<()> {
    let f = idx.fields();
    let mut sessions_named = std::collections::BTreeSet::new();
    let mut parents_named = std::collections::BTreeSet::new();
    let mut scanned = 0;
    // Sessions, then the recipe parents of their nodes, then those candidates' sessions (their
    // registrations): three rounds reach what detection reads; a fourth finds nothing new.
    for _ in 0..4 {
        let mut sessions = Vec::new();
        let mut parents = Vec::new();
        for e in &events[scanned..] {
            if let Some(s) = e.attrs.session {
                if sessions_named.insert(s) {
                    sessions.push(Term::from_field_u64(f.session, s));
                }
            }
            for p in e.attrs.path.iter().chain(&e.paths) {
                if let Some(parent) = crate::recipe::recipe_parent(p, schemes) {
                    if parents_named.insert(parent.to_string()) {
                        parents.push(parent.to_string());
                    }
                }
            }
        }
        scanned = events.len();
        if sessions.is_empty() && parents.is_empty() {
            break;
        }
        let mut named: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        if !sessions.is_empty() {
            named.push((Occur::Should, crate::index::any_of(sessions)));
        }
        for p in parents {
            // A parent's children: the path terms from `p/` up to `p0` ('0' follows '/').
            named.push((
                Occur::Should,
                Box::new(RangeQuery::new(
                    Bound::Included(Term::from_field_text(f.path, &format!("{p}/"))),
                    Bound::Excluded(Term::from_field_text(f.path, &format!("{p}0"))),
                )),
            ));
        }
        let q = BooleanQuery::new(vec![
            (Occur::Must, skeleton.box_clone()),
            (Occur::Must, Box::new(BooleanQuery::new(named))),
        ]);
        let addrs: Vec<u64> = idx
            .search(&q, None)?
            .hits
            .iter()
            .filter(|h| h.0 < lo)
            .map(|h| h.1)
            .filter(|a| seen.insert(*a))
            .collect();
        events.extend(idx.fetch(&addrs)?);
    }
    Ok(())
}

/// The query of every event detection reads everywhere (the kinds of `needs`).
fn skeleton(needs: &incident::Needs) -> Ast {
    any_kind(needs.kinds.iter().map(String::as_str))
}

/// Events of any of `kinds` (a name, or a prefix pattern such as `election.*`).
fn any_kind<'k>(kinds: impl IntoIterator<Item = &'k str>) -> Ast {
    Ast::Or(
        kinds
            .into_iter()
            .map(|k| Ast::Term {
                field: Some("kind".into()),
                value: k.to_string(),
                quoted: !k.contains('*'),
            })
            .collect(),
    )
}

/// Detects incidents in `events` (the skeleton): once without client connections, then with
/// those inside the failovers' spans (see [`incidents`]).
fn with_connections(
    idx: &IndexHandle,
    compiler: &Compiler,
    needs: &incident::Needs,
    defs: &incident::Definitions,
    mut events: Vec<Event>,
) -> Result<Vec<Incident>> {
    let windows = incident::connect_windows(&incident::detect(&events, defs), defs);
    if windows.is_empty() {
        return Ok(incident::detect(&events, defs));
    }
    for k in &needs.windowed {
        let kind = compiler.compile(&any_kind([k.as_str()]))?;
        events.extend(windowed(idx, kind.as_ref(), &windows)?);
    }
    // A session's earlier connection may also lie in an earlier span: keep each event once.
    events.sort_by(|a, b| (&a.source, a.offset).cmp(&(&b.source, b.offset)));
    events.dedup_by(|a, b| a.source == b.source && a.offset == b.offset && a.kind == b.kind);
    Ok(incident::detect(&events, defs))
}

/// Events matching `kind` inside `windows`, and for each session among them its last few such events before the first
/// window it shows up in (where it was before).
fn windowed(idx: &IndexHandle, kind: &dyn Query, windows: &[(i64, i64)]) -> Result<Vec<Event>> {
    let searcher = idx.searcher();
    let spans: Vec<(Occur, Box<dyn Query>)> = windows
        .iter()
        .map(|&(lo, hi)| {
            let q = crate::index::time_query(
                idx.fields(),
                Some(&searcher),
                Bound::Included(lo),
                Bound::Excluded(hi),
            );
            (Occur::Should, q)
        })
        .collect();
    let q = BooleanQuery::new(vec![
        (Occur::Must, kind.box_clone()),
        (Occur::Must, Box::new(BooleanQuery::new(spans))),
    ]);
    let hits = idx.search(&q, None)?;
    let mut near = idx.fetch(&hits.hits.iter().map(|h| h.1).collect::<Vec<_>>())?;
    // Each session's first window: its earlier events are those before that window's start.
    let first_seen = first_windows(&near, windows);
    // One search for all of those sessions, read from the fast columns; the detector wants the
    // last earlier event that names a server, which the columns cannot tell, so each
    // session's last few are loaded.
    const EARLIER: usize = 16;
    let terms: Vec<Term> = first_seen
        .keys()
        .map(|&s| Term::from_field_u64(idx.fields().session, s))
        .collect();
    let q = BooleanQuery::new(vec![
        (Occur::Must, kind.box_clone()),
        (Occur::Must, crate::index::any_of(terms)),
    ]);
    let mut before: BTreeMap<u64, Vec<(i64, u64)>> = BTreeMap::new();
    for (session, t, addr) in idx.search_by_session(&q)? {
        if first_seen.get(&session).is_some_and(|&lo| t < lo) {
            before.entry(session).or_default().push((t, addr));
        }
    }
    let earlier: Vec<u64> = before
        .into_values()
        .flat_map(|mut v| {
            v.sort_unstable();
            let from = v.len().saturating_sub(EARLIER);
            v.split_off(from).into_iter().map(|(_, a)| a)
        })
        .collect();
    near.extend(idx.fetch(&earlier)?);
    Ok(near)
}

/// Each session among `events` (those inside `windows`) with the start of the first window it
/// shows up in: its events before that are where it was before (what detection reads of a
/// session's earlier connections, from the index or from a lake).
fn first_windows(events: &[Event], windows: &[(i64, i64)]) -> BTreeMap<u64, i64> {
    let mut first_seen: BTreeMap<u64, i64> = BTreeMap::new();
    for e in events {
        if let (Some(s), Some(t)) = (e.attrs.session, e.ts) {
            let lo = windows
                .iter()
                .filter(|w| w.0 <= t && t < w.1)
                .map(|w| w.0)
                .min()
                .unwrap_or(t);
            first_seen
                .entry(s)
                .and_modify(|v| *v = (*v).min(lo))
                .or_insert(lo);
        }
    }
    first_seen
}

/// Replaces `incident:ID` terms by the incident's time range.
pub fn with_incidents(idx: &IndexHandle, ast: Ast, queries: &[PathBuf]) -> Result<Ast> {
    if !mentions_incident(&ast) {
        return Ok(ast);
    }
    let list = incidents(idx, queries)?;
    resolve_incidents(ast, &mut |id| {
        let inc = list.iter().find(|i| i.id == id).ok_or_else(|| {
            Error::NotFound(format!(
                "query: no incident {id:?} (zklens incidents lists them)"
            ))
        })?;
        let span = Ast::Range {
            field: "ts".into(),
            lo: Bound::Included(inc.started_at.clone()),
            hi: Bound::Included(inc.ended_at.clone()),
        };
        // An incident of a named ensemble is that ensemble's events in its span.
        Ok(match &inc.ensemble {
            Some(e) => Ast::And(vec![
                span,
                Ast::Term {
                    field: Some("ensemble".into()),
                    value: e.clone(),
                    quoted: true,
                },
            ]),
            None => span,
        })
    })
}

/// Clock-skew estimates (per node, with bounds) from the index.
pub fn skews(idx: &IndexHandle) -> Result<Vec<Skew>> {
    skews_within(idx, &Budget::default())
}

/// [`skews`], stopping with [`Error::Budget`] once `budget`'s deadline has passed.
pub fn skews_within(idx: &IndexHandle, budget: &Budget) -> Result<Vec<Skew>> {
    // Lines naming both a session and a zxid, and the txn records.
    let events = all(
        idx,
        "logger:txnlog OR (session:[* TO *] AND zxid:[* TO *])",
        budget,
    )?;
    Ok(incident::skew::estimate(&events))
}

/// A session's events (time order, the filter's window and limit) with its lifecycle summary
/// (unless only counting). The summary covers the whole session whatever the window: it is read
/// from the events found when they are all of the session's, else from a search of its own.
pub fn session(idx: &IndexHandle, id: u64, f: &Filter) -> Result<SessionAnswer> {
    let ast = Ast::Term {
        field: Some("session".into()),
        value: hex_id(id),
        quoted: false,
    };
    let found = filtered(idx, ast, f)?;
    let whole = f.window.since.is_none() && f.window.until.is_none();
    // The lifecycle reads only the kinds `session_summary` searches for and skips the rest.
    let summary = if f.count {
        None
    } else if whole && found.events.len() == found.total {
        Some(session::lifecycle(id, &found.events).to_string())
    } else {
        Some(session_summary(idx, id)?)
    };
    Ok(SessionAnswer {
        session: hex_id(id),
        summary,
        found,
    })
}

/// The lifecycle summary of a session (created, moved, expired, ephemerals lost).
pub fn session_summary(idx: &IndexHandle, id: u64) -> Result<String> {
    let q = format!(
        "session:{} AND (kind:txn.* OR kind:session.expired OR kind:client.*)",
        hex_id(id)
    );
    Ok(session::lifecycle(id, &all(idx, &q, &Budget::default())?).to_string())
}

/// One transaction's events (time order, the filter's window and limit).
pub fn zxid(idx: &IndexHandle, id: u64, f: &Filter) -> Result<ZxidAnswer> {
    let ast = Ast::Term {
        field: Some("zxid".into()),
        value: hex_id(id),
        quoted: false,
    };
    Ok(ZxidAnswer::new(id, filtered(idx, ast, f)?))
}

/// The incidents detected in the index that start inside `w`, with their summaries.
pub fn incident_list(
    idx: &IndexHandle,
    queries: &[PathBuf],
    w: &Window,
) -> Result<Vec<IncidentEntry>> {
    listed(incidents(idx, queries)?, w)
}

/// The incidents of `all` that start inside `w`, each with its summary.
fn listed(all: Vec<Incident>, w: &Window) -> Result<Vec<IncidentEntry>> {
    let list = all
        .into_iter()
        .map(|incident| IncidentEntry {
            detected_at: None,
            summary: crate::render::summary(&incident),
            incident,
        })
        .collect();
    starting_within(list, w, |e| &e.incident)
}

/// The items of `list` whose incident starts inside `w` (zone-less bounds read in `w.tz`).
pub fn starting_within<T>(
    list: Vec<T>,
    w: &Window,
    inc: impl Fn(&T) -> &Incident,
) -> Result<Vec<T>> {
    let now = time::now_nanos();
    let bound = |t: &Option<String>| {
        t.as_deref()
            .map(|t| time::parse_time(t, w.tz, now))
            .transpose()
    };
    let (since, until) = (bound(&w.since)?, bound(&w.until)?);
    Ok(list
        .into_iter()
        .filter(|x| {
            let t = time::parse_time(&inc(x).started_at, Tz::Utc, now).unwrap_or(0);
            since.is_none_or(|s| t >= s) && until.is_none_or(|u| t < u)
        })
        .collect())
}

/// One incident detected in the index, with its post-mortem text; [`Error::NotFound`] (naming
/// the known ones) when there is no such incident.
pub fn incident_report(idx: &IndexHandle, queries: &[PathBuf], id: &str) -> Result<IncidentReport> {
    let incident = find_incident(incidents(idx, queries)?, id)?;
    let skews = skews(idx)?;
    Ok(report(incident, &skews, None))
}

/// One incident's self-contained HTML page (space-time diagram and steps).
pub fn incident_html(idx: &IndexHandle, queries: &[PathBuf], id: &str) -> Result<String> {
    let incident = find_incident(incidents(idx, queries)?, id)?;
    let quiet = silences(idx, &incident, &Budget::default())?;
    Ok(crate::render::html::render(&incident, &skews(idx)?, &quiet))
}

/// The shortest silence shown: a node quiet this long across an incident's start.
const SILENCE_NS: i64 = 2_000_000_000;

/// The nodes that went quiet across an incident's start: a server killed with `kill -9` writes
/// nothing, so its last line before the incident is its last sign of life, and its next line
/// (if any) ends the silence. Looked at: the incident's nodes and the leaders it names.
pub fn silences(
    idx: &IndexHandle,
    inc: &Incident,
    budget: &Budget,
) -> Result<Vec<crate::render::html::Silence>> {
    use crate::render::html::{Sign, Silence};
    let start = inc.start_ns;
    let term = |field: &str, value: String| Ast::Term {
        field: Some(field.into()),
        value,
        quoted: false,
    };
    let window = |since: Option<i64>, until: Option<i64>, limit: Option<usize>| Filter {
        window: Window {
            since: since.map(time::rfc3339),
            until: until.map(time::rfc3339),
            tz: Tz::Utc,
        },
        limit,
        count: false,
        budget: *budget,
    };
    let mut nodes: Vec<String> = inc.steps.iter().map(|s| s.node.clone()).collect();
    let rec = inc.record();
    for id in [rec.old_leader, rec.new_leader].into_iter().flatten() {
        let found = filtered(
            idx,
            term("myid", id.to_string()),
            &window(None, None, Some(1)),
        )?;
        if let Some(e) = found.events.first() {
            nodes.push(e.node.to_string());
        }
    }
    nodes.sort();
    nodes.dedup();
    let sign = |e: &Event| Sign {
        ts: e.ts.map(time::rfc3339).unwrap_or_default(),
        at: e.ts.unwrap_or(0),
        kind: e.kind.to_string(),
        summary: e.headline().to_string(),
        evidence: format!("{}:{}", e.source, e.line),
    };
    let mut out = Vec::new();
    for node in nodes {
        let mut last = None;
        for reach in [60_000_000_000i64, 900_000_000_000] {
            let before = filtered(
                idx,
                term("node", node.clone()),
                &window(Some(start - reach), Some(start), None),
            )?;
            last = before.events.iter().rev().find(|e| e.ts.is_some()).cloned();
            if last.is_some() {
                break;
            }
        }
        let Some(last) = last else { continue };
        let at = last.ts.unwrap_or(start);
        // Bounds are read to the millisecond: the next line is the first one past `at`'s.
        let after = filtered(
            idx,
            term("node", node.clone()),
            &window(
                Some(at - at.rem_euclid(1_000_000) + 1_000_000),
                None,
                Some(1),
            ),
        )?;
        let back = after
            .events
            .into_iter()
            .find(|e| e.ts.is_some_and(|t| t > at));
        let quiet_until = back.as_ref().and_then(|e| e.ts).unwrap_or(i64::MAX);
        if quiet_until > start && quiet_until.saturating_sub(at) >= SILENCE_NS {
            out.push(Silence {
                node,
                last: sign(&last),
                back: back.as_ref().map(sign),
            });
        }
    }
    Ok(out)
}

/// The incident `id` of `list`; [`Error::NotFound`] naming the known ones otherwise.
pub fn find_incident(list: Vec<Incident>, id: &str) -> Result<Incident> {
    let ids: Vec<&str> = list.iter().map(|i| i.id.as_str()).collect();
    let msg = format!("no incident {id:?}; known: {}", ids.join(", "));
    list.into_iter()
        .find(|i| i.id == id)
        .ok_or(Error::NotFound(msg))
}

/// An incident's report: its summary and its text with the clock skews applied.
pub fn report(incident: Incident, skews: &[Skew], detected_at: Option<String>) -> IncidentReport {
    IncidentReport {
        detected_at,
        summary: crate::render::summary(&incident),
        text: crate::render::text_with_skew(&incident, skews),
        incident,
    }
}

/// What the index holds: its event count and every source's checkpoint.
pub fn indexed(idx: &IndexHandle) -> Indexed {
    Indexed {
        events: idx.num_events(),
        sources: idx
            .state()
            .checkpoints
            .sources
            .iter()
            .map(|c| IndexedSource {
                node: c.node.clone(),
                format: c.format.clone(),
                events: c.events,
                offset: c.offset,
                path: c.path.clone(),
                coverage: c.coverage,
            })
            .collect(),
    }
}
