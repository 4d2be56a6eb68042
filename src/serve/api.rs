//! The HTTP API (axum). Read-only: queries run against the committed index through the
//! application layer ([`crate::app`], the same code as the CLI) and answer with its types;
//! status comes from [`Shared`](super::Shared). A failing request answers with the error's
//! own status ([`Error::http_status`]) and `{"error": "..."}`.
//!
//! | endpoint | answer |
//! |---|---|
//! | `GET /health` | `{"status":"ok", ...}` (no token needed) |
//! | `GET /api/query?q=&since=&until=&tz=&limit=&count=` | `{"total", "events"}` |
//! | `GET /api/sessions/{id}?since=&until=&tz=&limit=&count=` | `{"session", "summary", "total", "events"}` |
//! | `GET /api/zxids/{zxid}?since=&until=&tz=&limit=&count=` | `{"zxid", "epoch", "counter", "total", "events"}` |
//! | `GET /api/incidents?since=&until=&tz=` | incidents recognised (starting in the window), with `detected_at` and `summary` |
//! | `GET /api/incidents/{id}` | one incident with its `summary` and post-mortem `text` |
//! | `GET /api/incidents/{id}/html` | its report (self-contained HTML) |
//! | `GET /api/skew` | each node's clock offset, with bounds |
//! | `GET /api/recipes` | every recipe parent's holder timeline (from the txn logs) |
//! | `GET /api/index` | what the index holds: `{"events", "sources"}` |
//! | `GET /api/sources` | every source: state, lag, coverage (entries, timestamped, classified), the agent shipping it; refusals; registrations no agent covers |
//! | `GET /api/registrations` | registrations, up and gone |
//! | `GET /api/agents` | the agents (`/zklens/agents`), the registrations and sources each covers, and the registrations whose files are on a host no agent covers (`uncovered`) |
//! | `GET /metrics` | Prometheus text format |
//! | `POST /v1/logs` | OTLP/HTTP logs (protobuf or JSON, gzip or not): indexed, then answered ([`super::intake`]); needs a configured token |
//! | `GET /api/checkpoints?source=` | a pushed source's acknowledged checkpoint (`{"source", "checkpoint"}`), or every one (`{"sources"}`; `prefix=` keeps those whose key starts with it) |
//!
//! `tz` is the zone of zone-less times in `since`, `until` and the query (default UTC).
//!
//! Every request's `Host` must be a loopback name or address, the listen address or one of
//! `api_hosts` (else 421). Requests that read the index run off the async workers within the
//! service's budgets: `max_requests` at once, `request_timeout_ms` each (then 503), answers cut
//! at `max_events` / `max_answer_bytes` events and marked `"truncated": true`. Answers that are
//! one computed whole (`/api/skew`, `/api/recipes`, an incident's HTML report) are not cut: one
//! larger than `max_answer_bytes` is answered 503, naming the limit.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use crate::app::{self, Budget, Filter, Found, IncidentEntry, Window};
use crate::checkpoint::Coverage;
use crate::error::Error;
use crate::event::parse_id;
use crate::time::Tz;

use super::config::ServeConfig;
use super::Shared;

type St = State<Arc<Shared>>;

/// The API's routes.
pub fn router(shared: Arc<Shared>) -> Router {
    let api = Router::new()
        .route("/api/query", get(query))
        .route("/api/sessions/{id}", get(session))
        .route("/api/zxids/{zxid}", get(zxid))
        .route("/api/incidents", get(incidents))
        .route("/api/incidents/{id}", get(incident))
        .route("/api/incidents/{id}/html", get(incident_html))
        .route("/api/skew", get(skew))
        .route("/api/recipes", get(recipes))
        .route("/api/index", get(index))
        .route("/api/sources", get(sources))
        .route("/api/registrations", get(registrations))
        .route("/api/agents", get(agents))
        .route("/metrics", get(metrics))
        .route("/api/checkpoints", get(checkpoints))
        .route(
            "/v1/logs",
            post(otlp_logs).layer(DefaultBodyLimit::max(shared.intake.limits.max_body)),
        )
        .route_layer(middleware::from_fn_with_state(shared.clone(), auth));
    Router::new()
        .route("/health", get(health))
        .merge(api)
        .layer(middleware::from_fn_with_state(shared.clone(), hosts))
        .with_state(shared)
}

/// `Host` check on every request (DNS rebinding: a web page whose name is made to resolve to
/// 127.0.0.1 reaches the API from the browser under its own name, which it then may read).
/// Loopback names and addresses, the listen address and `api_hosts` are answered; any other
/// name is refused with 421. A request without `Host` (not a browser) is let through.
async fn hosts(State(s): St, req: Request, next: Next) -> Response {
    let named = req
        .headers()
        .get(header::HOST)
        .map(|h| String::from_utf8_lossy(h.as_bytes()).into_owned())
        .into_iter()
        .chain(req.uri().authority().map(|a| a.as_str().to_string()));
    for host in named {
        if !host_allowed(&host, s.cfg.listen, &s.cfg.api_hosts) {
            return error(
                StatusCode::MISDIRECTED_REQUEST,
                format!(
                    "this service does not answer to the host {host:?}: add its name to api_hosts in the configuration (or --api-host)"
                ),
            );
        }
    }
    next.run(req).await
}

/// Whether a `Host` value (`name`, `name:port`, `1.2.3.4:port`, `[::1]:port`) names this
/// service: a loopback address or `localhost`, the address it listens on (any address when it
/// listens on all of them: an address is not a name a page can rebind), or one of `names`
/// (`*`: any), compared without port and case.
pub fn host_allowed(value: &str, listen: std::net::SocketAddr, names: &[String]) -> bool {
    let v = value.trim();
    let port_ok = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    let name = if let Some(rest) = v.strip_prefix('[') {
        match rest.split_once(']') {
            Some((ip, "")) => ip,
            Some((ip, tail)) if tail.strip_prefix(':').is_some_and(port_ok) => ip,
            _ => return false,
        }
    } else {
        match v.split_once(':') {
            Some((h, p)) if port_ok(p) => h,
            Some(_) => return false,
            None => v,
        }
    };
    let name = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
    if name.is_empty() {
        return false;
    }
    if let Ok(ip) = name.parse::<std::net::IpAddr>() {
        return ip.is_loopback() || ip == listen.ip() || listen.ip().is_unspecified();
    }
    name == "localhost"
        || names.iter().any(|n| {
            let n = n.trim();
            n == "*" || n.strip_suffix('.').unwrap_or(n).eq_ignore_ascii_case(&name)
        })
}

/// Bearer-token check (when a token is configured).
async fn auth(State(s): St, req: Request, next: Next) -> Response {
    if let Some(want) = &s.cfg.token {
        let got = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if !got.is_some_and(|g| constant_time_eq(g.as_bytes(), want.as_bytes())) {
            return (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer")],
                Json(json!({"error": "a bearer token is required"})),
            )
                .into_response();
        }
    }
    next.run(req).await
}

/// Equal bytes, compared in a time that does not depend on where they differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn error(code: StatusCode, msg: impl std::fmt::Display) -> Response {
    (code, Json(json!({"error": msg.to_string()}))).into_response()
}

/// The answer to a request that failed with `e`: its status, its message.
fn failed(e: &Error) -> Response {
    let code = StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    error(code, e)
}

/// Runs blocking index work off the async workers, within the request budgets: at most
/// `max_requests` at once (a permit held until the work has stopped, even after its answer was
/// given up), and answered 503 once `request_timeout_ms` has passed since `started`. The
/// async workers never wait on it, so the service keeps answering.
async fn blocking<T: Send + 'static>(
    s: &Shared,
    started: Instant,
    f: impl FnOnce() -> crate::error::Result<T> + Send + 'static,
) -> Result<T, Response> {
    let ms = s.cfg.request_timeout_ms;
    let deadline = tokio::time::Instant::from_std(started + Duration::from_millis(ms));
    let permit =
        match tokio::time::timeout_at(deadline, s.requests.clone().acquire_owned()).await {
            Ok(Ok(p)) => p,
            Ok(Err(_)) => return Err(failed(&Error::Internal("request permits closed".into()))),
            Err(_) => {
                return Err(failed(&Error::Budget(format!(
                    "busy: {} requests were already reading the index for the whole time budget of {ms} ms (max_requests, request_timeout_ms)",
                    s.cfg.max_requests.max(1)
                ))))
            }
        };
    let task = tokio::task::spawn_blocking(move || {
        let _held = permit;
        f()
    });
    match tokio::time::timeout_at(deadline, task).await {
        Ok(Ok(Ok(v))) => Ok(v),
        Ok(Ok(Err(e))) => Err(failed(&e)),
        Ok(Err(e)) => Err(failed(&Error::Internal(format!("request task: {e}")))),
        Err(_) => Err(failed(&Error::Budget(format!(
            "the request took longer than its time budget of {ms} ms (request_timeout_ms) and was given up"
        )))),
    }
}

/// Runs `f` like [`blocking`] and answers its value as JSON, serialized on the blocking
/// thread too (an answer may be tens of MB).
async fn ask<T: serde::Serialize + 'static>(
    s: &Shared,
    started: Instant,
    f: impl FnOnce() -> crate::error::Result<T> + Send + 'static,
) -> Response {
    let body = blocking(s, started, move || {
        serde_json::to_vec(&f()?).map_err(|e| Error::Internal(format!("answer: {e}")))
    })
    .await;
    match body {
        Ok(b) => ([(header::CONTENT_TYPE, "application/json")], b).into_response(),
        Err(r) => r,
    }
}

/// A writer that holds at most `max` bytes and fails past them: an answer serialized into it
/// stops at the budget instead of being built whole first.
struct Capped {
    buf: Vec<u8>,
    max: usize,
    over: bool,
}

impl std::io::Write for Capped {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        if self.buf.len().saturating_add(b.len()) > self.max {
            self.over = true;
            return Err(std::io::Error::other("over max_answer_bytes"));
        }
        self.buf.extend_from_slice(b);
        Ok(b.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The error of an answer that is one computed whole (a skew table, recipe timelines, a
/// report) and is larger than `max_answer_bytes`: it is refused rather than cut, since a part
/// of it would read as the whole.
fn too_big(what: &str, max: usize) -> Error {
    Error::Budget(format!(
        "{what} is larger than the service's answer budget of {max} bytes (max_answer_bytes, --max-answer-bytes); it is not cut, since a part of it would read as the whole"
    ))
}

/// Runs `f` like [`blocking`] and answers its value as JSON when it fits in
/// `max_answer_bytes`, else 503 ([`too_big`]); serialization stops at the budget. For answers
/// that are one computed whole (`what` names it); event lists are cut instead ([`mark`]).
async fn ask_whole<T: serde::Serialize + 'static>(
    s: &Shared,
    started: Instant,
    what: &'static str,
    f: impl FnOnce() -> crate::error::Result<T> + Send + 'static,
) -> Response {
    let max = s.cfg.max_answer_bytes;
    let body = blocking(s, started, move || {
        let v = f()?;
        let mut w = Capped {
            buf: Vec::new(),
            max,
            over: false,
        };
        match serde_json::to_writer(&mut w, &v) {
            Ok(()) => Ok(w.buf),
            Err(_) if w.over => Err(too_big(what, max)),
            Err(e) => Err(Error::Internal(format!("answer: {e}"))),
        }
    })
    .await;
    match body {
        Ok(b) => ([(header::CONTENT_TYPE, "application/json")], b).into_response(),
        Err(r) => r,
    }
}

async fn health(State(s): St) -> Response {
    let st = s.status();
    Json(json!({
        "status": "ok",
        "uptime_s": s.started.elapsed().as_secs(),
        "zookeeper": st.zk,
        "sources": st.sources.len(),
        "following": st.sources.values().filter(|x| x.state == "following").count(),
        "last_commit": st.last_commit,
        "incidents": st.incidents.len(),
    }))
    .into_response()
}

/// Query parameters of the query endpoints (`q` for `/api/query` only; `/api/incidents` reads
/// the window alone).
#[derive(Debug, Default, Deserialize)]
pub struct AskParams {
    /// Query text.
    #[serde(default)]
    pub q: String,
    /// Lower time bound.
    pub since: Option<String>,
    /// Upper time bound.
    pub until: Option<String>,
    /// Zone of zone-less times (default UTC).
    pub tz: Option<String>,
    /// At most this many events (default 1000; 0 = all), and never more than the service's
    /// `max_events`.
    pub limit: Option<usize>,
    /// Only count.
    #[serde(default)]
    pub count: bool,
}

impl AskParams {
    /// The window they name.
    pub fn window(&self) -> Result<Window, Error> {
        Ok(Window {
            since: self.since.clone(),
            until: self.until.clone(),
            tz: match &self.tz {
                Some(t) => t.parse()?,
                None => Tz::Utc,
            },
        })
    }

    /// The filter they name.
    pub fn filter(&self) -> Result<Filter, Error> {
        Ok(Filter {
            window: self.window()?,
            limit: match self.limit {
                Some(0) => None,
                Some(n) => Some(n),
                None => Some(1000),
            },
            count: self.count,
            ..Filter::default()
        })
    }

    /// The filter they name within the service's budgets (`max_events`, `max_answer_bytes`,
    /// the time budget from `started`), and the number of events asked for (None: all).
    pub fn budgeted(
        &self,
        cfg: &ServeConfig,
        started: Instant,
    ) -> Result<(Filter, Option<usize>), Error> {
        let mut f = self.filter()?;
        let asked = f.limit;
        let max = cfg.max_events.max(1);
        f.limit = Some(asked.map_or(max, |n| n.min(max)));
        f.budget = Budget {
            deadline: Some(started + Duration::from_millis(cfg.request_timeout_ms)),
            max_bytes: Some(cfg.max_answer_bytes),
        };
        Ok((f, asked))
    }
}

/// Marks `found` truncated when it holds fewer events than were `asked` for (None: all) and
/// matched: a budget cut it, not the limit.
fn mark(found: &mut Found, asked: Option<usize>, count: bool) {
    let want = asked.map_or(found.total, |n| n.min(found.total));
    if !count && found.events.len() < want {
        found.truncated = true;
    }
}

async fn query(State(s): St, Query(p): Query<AskParams>) -> Response {
    let started = Instant::now();
    let (f, asked) = match p.budgeted(&s.cfg, started) {
        Ok(f) => f,
        Err(e) => return failed(&e),
    };
    let s2 = s.clone();
    ask(&s, started, move || {
        let mut found = app::search(&*s2.index()?, &p.q, &f, &s2.cfg.queries)?;
        mark(&mut found, asked, f.count);
        Ok(found)
    })
    .await
}

/// An id in a path: 0x-prefixed hex, hex, or decimal.
fn id_param(id: &str, what: &str) -> Result<u64, Error> {
    parse_id(id).ok_or_else(|| Error::Param(format!("{id:?} is not a {what}")))
}

async fn session(State(s): St, Path(id): Path<String>, Query(p): Query<AskParams>) -> Response {
    let started = Instant::now();
    let (id, (f, asked)) =
        match id_param(&id, "session id").and_then(|id| Ok((id, p.budgeted(&s.cfg, started)?))) {
            Ok(v) => v,
            Err(e) => return failed(&e),
        };
    let s2 = s.clone();
    ask(&s, started, move || {
        let mut a = app::session(&*s2.index()?, id, &f)?;
        mark(&mut a.found, asked, f.count);
        Ok(a)
    })
    .await
}

async fn zxid(State(s): St, Path(z): Path<String>, Query(p): Query<AskParams>) -> Response {
    let started = Instant::now();
    let (z, (f, asked)) =
        match id_param(&z, "zxid").and_then(|z| Ok((z, p.budgeted(&s.cfg, started)?))) {
            Ok(v) => v,
            Err(e) => return failed(&e),
        };
    let s2 = s.clone();
    ask(&s, started, move || {
        let mut a = app::zxid(&*s2.index()?, z, &f)?;
        mark(&mut a.found, asked, f.count);
        Ok(a)
    })
    .await
}

async fn incidents(State(s): St, Query(p): Query<AskParams>) -> Response {
    let mut live: Vec<super::LiveIncident> = s.status().incidents.values().cloned().collect();
    // In the order detection lists them, as the CLI prints them.
    live.sort_by_key(|li| li.rank);
    let list: Vec<IncidentEntry> = live
        .into_iter()
        .map(|li| IncidentEntry {
            detected_at: Some(li.detected_at),
            summary: li.summary,
            incident: li.incident,
        })
        .collect();
    match p
        .window()
        .and_then(|w| app::starting_within(list, &w, |e| &e.incident))
    {
        Ok(list) => Json(list).into_response(),
        Err(e) => failed(&e),
    }
}

/// The live incident `id`, or the error naming the known ones.
fn live(s: &super::Shared, id: &str) -> Result<super::LiveIncident, Error> {
    let st = s.status();
    st.incidents.get(id).cloned().ok_or_else(|| {
        let ids: Vec<&str> = st.incidents.keys().map(String::as_str).collect();
        Error::NotFound(format!("no incident {id:?}; known: {}", ids.join(", ")))
    })
}

async fn incident(State(s): St, Path(id): Path<String>) -> Response {
    match live(&s, &id) {
        Ok(li) => Json(app::IncidentReport {
            detected_at: Some(li.detected_at),
            summary: li.summary,
            text: li.text,
            incident: li.incident,
        })
        .into_response(),
        Err(e) => failed(&e),
    }
}

async fn incident_html(State(s): St, Path(id): Path<String>) -> Response {
    let inc = match live(&s, &id) {
        Ok(li) => li.incident,
        Err(e) => return failed(&e),
    };
    let s2 = s.clone();
    let started = Instant::now();
    let max = s.cfg.max_answer_bytes;
    let html = blocking(&s, started, move || {
        let idx = s2.index()?;
        let b = budget(&s2.cfg, started);
        let skews = app::skews_within(&idx, &b)?;
        let quiet = app::silences(
            &idx,
            &inc,
            &app::Budget {
                max_bytes: None,
                ..b
            },
        )?;
        let html = crate::render::html::render(&inc, &skews, &quiet);
        if html.len() > max {
            return Err(too_big("the incident report", max));
        }
        Ok(html)
    })
    .await;
    match html {
        Ok(html) => ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response(),
        Err(r) => r,
    }
}

/// The time budget of a request that started at `started` (its answer's size is checked by
/// the endpoint).
fn budget(cfg: &ServeConfig, started: Instant) -> Budget {
    Budget {
        deadline: Some(started + Duration::from_millis(cfg.request_timeout_ms)),
        max_bytes: None,
    }
}

async fn skew(State(s): St) -> Response {
    let s2 = s.clone();
    let started = Instant::now();
    ask_whole(&s, started, "the skew table", move || {
        app::skews_within(&*s2.index()?, &budget(&s2.cfg, started))
    })
    .await
}

async fn recipes(State(s): St) -> Response {
    let s2 = s.clone();
    let started = Instant::now();
    ask_whole(&s, started, "the recipe timelines", move || {
        app::recipes_within(&*s2.index()?, &s2.cfg.queries, &budget(&s2.cfg, started))
    })
    .await
}

async fn index(State(s): St) -> Response {
    let s2 = s.clone();
    ask(&s, Instant::now(), move || Ok(app::indexed(&*s2.index()?))).await
}

async fn sources(State(s): St) -> Response {
    // Lag of files: what was written and not yet handed to the index.
    let (mut list, refusals) = {
        let st = s.status();
        let list: Vec<super::SourceStatus> = st.sources.values().cloned().collect();
        let refusals: Vec<String> = st.refusals.iter().cloned().collect();
        (list, refusals)
    };
    for src in &mut list {
        src.lag_bytes = file_lag(src);
    }
    // Agents' sources: which agent ships them, for which registration.
    let uncovered = {
        let st = s.status();
        for src in &mut list {
            if let Some(h) = super::agent_of(&src.url) {
                src.agent = Some(h.to_string());
                if src.registration.is_none() {
                    src.registration = st.registration_of_pushed(&src.url);
                }
            }
        }
        st.coverage(&s.local).uncovered
    };
    Json(json!({"sources": list, "refusals": refusals, "uncovered": uncovered})).into_response()
}

/// `GET /api/agents`: the agents registered under `/zklens/agents`, what each covers, and the
/// registrations no agent covers.
async fn agents(State(s): St) -> Response {
    let cov = s.status().coverage(&s.local);
    Json(json!({"agents": cov.agents, "uncovered": cov.uncovered})).into_response()
}

async fn registrations(State(s): St) -> Response {
    let st = s.status();
    Json(json!({"registrations": st.registrations, "ensemble": st.ensemble})).into_response()
}

/// Bytes written to a followed file and not handed to the index yet.
fn file_lag(src: &super::SourceStatus) -> Option<u64> {
    if src.kind != "file" || src.state != "following" {
        return None;
    }
    let p = src.url.strip_prefix("file://")?;
    std::fs::metadata(p)
        .ok()
        .map(|m| m.len().saturating_sub(src.offset))
}

fn esc(label: &str) -> String {
    label
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// A metric family of sources' coverage: name, help, the count it shows.
type CoverageFamily = (&'static str, &'static str, fn(&Coverage) -> u64);

async fn metrics(State(s): St) -> Response {
    let m = &s.metrics;
    let st = s.status();
    let mut out = String::new();
    let up = s.started.elapsed().as_secs_f64().max(1e-9);
    let events = m.events.load(Ordering::Relaxed);
    let bytes = m.bytes.load(Ordering::Relaxed);
    let _ = writeln!(
        out,
        "# HELP zklens_events_total Events indexed since start.\n# TYPE zklens_events_total counter\nzklens_events_total {events}"
    );
    let _ = writeln!(
        out,
        "# HELP zklens_bytes_total Bytes read from sources since start.\n# TYPE zklens_bytes_total counter\nzklens_bytes_total {bytes}"
    );
    let _ = writeln!(
        out,
        "# HELP zklens_events_per_second Events indexed per second, averaged since start.\n# TYPE zklens_events_per_second gauge\nzklens_events_per_second {:.3}",
        events as f64 / up
    );
    let _ = writeln!(
        out,
        "# HELP zklens_bytes_per_second Bytes read per second, averaged since start.\n# TYPE zklens_bytes_per_second gauge\nzklens_bytes_per_second {:.3}",
        bytes as f64 / up
    );
    let _ = writeln!(
        out,
        "# HELP zklens_commits_total Index commits.\n# TYPE zklens_commits_total counter\nzklens_commits_total {}",
        m.commits.load(Ordering::Relaxed)
    );
    let em = &s.export_metrics;
    let im = &s.intake.metrics;
    for (name, help, v) in [
        ("zklens_trace_export_traces_total", "Traces sent to [export.otlp] (incidents and their sessions).", &em.traces),
        ("zklens_trace_export_spans_total", "Spans sent to [export.otlp].", &em.spans),
        ("zklens_trace_export_failed_total", "Traces given up after every attempt to send them failed.", &em.failed),
        ("zklens_trace_export_dropped_total", "Incidents not exported because the export queue was full.", &em.dropped),
        ("zklens_otlp_requests_total", "POST /v1/logs requests indexed and answered 200.", &im.requests),
        ("zklens_otlp_records_total", "OTLP log records taken.", &im.records),
        ("zklens_otlp_duplicates_total", "OTLP log records dropped as resends of records received before (by offset or line number).", &im.duplicates),
        ("zklens_otlp_refused_total", "POST /v1/logs requests refused (no token configured, content type, unreadable or too large body).", &im.refused),
    ] {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
            v.load(Ordering::Relaxed)
        );
    }
    let _ = writeln!(
        out,
        "# HELP zklens_incidents_detected_total Incidents recognised since start.\n# TYPE zklens_incidents_detected_total counter\nzklens_incidents_detected_total {}",
        m.incidents.load(Ordering::Relaxed)
    );
    let _ = writeln!(
        out,
        "# HELP zklens_incident_detection_seconds How long the last incident detection took (the first reads the whole index, each later one what the commits since brought; the detector then rests three times as long).\n# TYPE zklens_incident_detection_seconds gauge\nzklens_incident_detection_seconds {:.6}",
        m.detect_us.load(Ordering::Relaxed) as f64 / 1e6
    );
    let _ = writeln!(
        out,
        "# HELP zklens_zookeeper_connected 1 when the discovery session is connected.\n# TYPE zklens_zookeeper_connected gauge\nzklens_zookeeper_connected {}",
        u8::from(st.zk.state == "connected")
    );
    let _ = writeln!(
        out,
        "# HELP zklens_source_lag_bytes Bytes written to a file source and not indexed yet.\n# TYPE zklens_source_lag_bytes gauge"
    );
    for src in st.sources.values() {
        if let Some(lag) = file_lag(src) {
            let _ = writeln!(
                out,
                "zklens_source_lag_bytes{{source=\"{}\",node=\"{}\"}} {lag}",
                esc(&src.url),
                esc(&src.node),
            );
        }
    }
    let _ = writeln!(
        out,
        "# HELP zklens_source_events_total Events indexed per source since start.\n# TYPE zklens_source_events_total counter"
    );
    for src in st.sources.values() {
        let _ = writeln!(
            out,
            "zklens_source_events_total{{source=\"{}\",node=\"{}\"}} {}",
            esc(&src.url),
            esc(&src.node),
            src.events
        );
    }
    let families: [CoverageFamily; 3] = [
        (
            "zklens_source_entries_total",
            "Entries read from a text source (over everything indexed from it, across restarts).",
            |c| c.entries,
        ),
        (
            "zklens_source_entries_timestamped_total",
            "Entries of a text source that have a timestamp.",
            |c| c.timestamped,
        ),
        (
            "zklens_source_entries_classified_total",
            "Entries of a text source classified beyond `log`.",
            |c| c.classified,
        ),
    ];
    for (name, help, value) in families {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
        for src in st.sources.values() {
            if let Some(c) = &src.coverage {
                let _ = writeln!(
                    out,
                    "{name}{{source=\"{}\",node=\"{}\"}} {}",
                    esc(&src.url),
                    esc(&src.node),
                    value(c)
                );
            }
        }
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression: index work ran with no time budget and no bound on how many ran at once.
    /// Work past its budget is answered 503 at the budget (not when it ends), and keeps its
    /// permit until it has really stopped, so abandoned work cannot pile up.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn work_past_its_time_budget_is_answered_503_and_keeps_its_permit() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let cfg = ServeConfig {
            request_timeout_ms: 100,
            max_requests: 1,
            ..ServeConfig::default()
        };
        let registry =
            crate::parser::Registry::load(&[] as &[std::path::PathBuf]).expect("formats");
        let (shared, _sink) =
            super::super::prepare(cfg, crate::index::DataDir::new(tmp.path()), registry)
                .expect("prepare");
        let slow = || {
            std::thread::sleep(Duration::from_millis(1500));
            Ok(())
        };
        let t0 = Instant::now();
        let r = blocking(&shared, Instant::now(), slow).await;
        let status = r.map(|_| ()).map_err(|r| r.status());
        assert_eq!(status, Err(StatusCode::SERVICE_UNAVAILABLE));
        // 100 ms budget: answered well before the work's 1.5 s (10x headroom).
        assert!(
            t0.elapsed() < Duration::from_millis(1000),
            "{:?}",
            t0.elapsed()
        );
        // The abandoned work still holds the only permit: the next request waits its own
        // budget and is refused as busy, without running.
        let ran = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let r2 = ran.clone();
        let r = blocking(&shared, Instant::now(), move || {
            r2.store(true, Ordering::SeqCst);
            Ok(())
        })
        .await;
        assert_eq!(
            r.map(|_| ()).map_err(|r| r.status()),
            Err(StatusCode::SERVICE_UNAVAILABLE)
        );
        assert!(!ran.load(Ordering::SeqCst));
        // Once it has stopped, requests run again.
        tokio::time::sleep(Duration::from_millis(1600)).await;
        assert!(blocking(&shared, Instant::now(), || Ok(1)).await.is_ok());
    }

    #[test]
    fn hosts_a_rebinding_page_could_use_are_refused() {
        let lo: std::net::SocketAddr = "127.0.0.1:7311".parse().expect("addr");
        let none: Vec<String> = Vec::new();
        for ok in [
            "127.0.0.1",
            "127.0.0.1:7311",
            "127.1.2.3:80",
            "localhost",
            "LocalHost:7311",
            "localhost.",
            "[::1]:7311",
            "[::1]",
        ] {
            assert!(host_allowed(ok, lo, &none), "{ok}");
        }
        for bad in [
            "evil.example",
            "evil.example:7311",
            "localhost.evil.example",
            "10.0.0.5:7311",
            "",
            ":7311",
            "::1",
            "127.0.0.1:x",
            "[::1]x",
            "127.0.0.1:7311@evil",
        ] {
            assert!(!host_allowed(bad, lo, &none), "{bad}");
        }
        // Configured names, without port or case; `*` opens it to any.
        let named = vec!["zklens.example.com".to_string()];
        assert!(host_allowed("ZKLENS.example.com:7311", lo, &named));
        assert!(!host_allowed("other.example.com", lo, &named));
        assert!(host_allowed("other.example.com", lo, &["*".to_string()]));
        // The listen address; every address when listening on all of them (names still not).
        let lan: std::net::SocketAddr = "10.0.0.5:7311".parse().expect("addr");
        assert!(host_allowed("10.0.0.5:7311", lan, &none));
        assert!(!host_allowed("10.0.0.6", lan, &none));
        let all: std::net::SocketAddr = "0.0.0.0:7311".parse().expect("addr");
        assert!(host_allowed("192.168.1.9:7311", all, &none));
        assert!(!host_allowed("evil.example", all, &none));
    }
}

/// `POST /v1/logs`: an OTLP/HTTP logs export request. Answered (in the request's encoding)
/// only once a commit holds its records; 400 for a body that cannot be read (naming the
/// offset), 415 for another content type, 403 when the service has no token, 503 while the
/// writer is not running (retry).
async fn otlp_logs(State(s): St, headers: HeaderMap, body: Bytes) -> Response {
    use crate::source::otlp::{self, Encoding};
    let refuse = |code: StatusCode, msg: String| {
        s.intake.metrics.refused.fetch_add(1, Ordering::Relaxed);
        error(code, msg)
    };
    if s.cfg.token.is_none() {
        return refuse(
            StatusCode::FORBIDDEN,
            "POST /v1/logs takes logs only with a token: set token or token_file in the configuration, --token-file, or ZKLENS_TOKEN".into(),
        );
    }
    let ctype = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let Some(enc) = Encoding::of_content_type(ctype) else {
        return refuse(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "Content-Type {ctype:?}: OTLP/HTTP is application/x-protobuf or application/json"
            ),
        );
    };
    let cenc = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let s2 = s.clone();
    let done = tokio::task::spawn_blocking(move || {
        let limits = s2.intake.limits;
        let raw = otlp::decompress(&body, cenc.as_deref(), limits.max_body)?;
        let records = otlp::decode(&raw, enc, &limits)?;
        s2.intake.receive(&s2, records)
    })
    .await;
    match done {
        Ok(Ok(_)) => match enc {
            Encoding::Json => ([(header::CONTENT_TYPE, "application/json")], "{}").into_response(),
            Encoding::Protobuf => {
                // An empty ExportLogsServiceResponse encodes to no bytes.
                (
                    [(header::CONTENT_TYPE, "application/x-protobuf")],
                    Vec::new(),
                )
                    .into_response()
            }
        },
        Ok(Err(e)) => {
            if e.http_status() == 400 {
                s.intake.metrics.refused.fetch_add(1, Ordering::Relaxed);
            }
            failed(&e)
        }
        Err(e) => failed(&Error::Internal(format!("request task: {e}"))),
    }
}

/// Query of `GET /api/checkpoints`.
#[derive(Debug, Deserialize)]
struct CheckpointParams {
    source: Option<String>,
    /// Only the sources whose key starts with this (an agent asks for `agent://HOST/`).
    prefix: Option<String>,
}

/// `GET /api/checkpoints`: where a pushed source resumes (its acknowledged checkpoint).
async fn checkpoints(State(s): St, Query(p): Query<CheckpointParams>) -> Response {
    match p.source {
        Some(key) => {
            let cp = s.intake.checkpoint(&s, &key);
            Json(json!({"source": key, "checkpoint": cp})).into_response()
        }
        None => {
            let mut all = s.intake.checkpoints(&s);
            if let Some(pre) = &p.prefix {
                all.retain(|c| c.path.starts_with(pre.as_str()));
            }
            Json(json!({"sources": all})).into_response()
        }
    }
}
