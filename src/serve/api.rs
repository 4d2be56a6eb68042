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
//! | `GET /api/sources` | every source: state, lag, coverage (entries, timestamped, classified), refusals |
//! | `GET /api/registrations` | registrations, up and gone |
//! | `GET /metrics` | Prometheus text format |
//!
//! `tz` is the zone of zone-less times in `since`, `until` and the query (default UTC).

use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::{Path, Query, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use crate::app::{self, Filter, IncidentEntry, Window};
use crate::checkpoint::Coverage;
use crate::error::Error;
use crate::event::parse_id;
use crate::time::Tz;

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
        .route("/metrics", get(metrics))
        .route_layer(middleware::from_fn_with_state(shared.clone(), auth));
    Router::new()
        .route("/health", get(health))
        .merge(api)
        .with_state(shared)
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

/// Runs blocking index work off the async workers.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> crate::error::Result<T> + Send + 'static,
) -> Result<T, Response> {
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(failed(&e)),
        Err(e) => Err(failed(&Error::Internal(format!("request task: {e}")))),
    }
}

/// Its JSON, or the error's answer.
fn answer<T: serde::Serialize>(r: Result<T, Response>) -> Response {
    match r {
        Ok(v) => Json(v).into_response(),
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
    /// At most this many events (default 1000; 0 = all).
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
        })
    }
}

async fn query(State(s): St, Query(p): Query<AskParams>) -> Response {
    let f = match p.filter() {
        Ok(f) => f,
        Err(e) => return failed(&e),
    };
    answer(blocking(move || app::search(&*s.index()?, &p.q, &f, &s.cfg.queries)).await)
}

/// An id in a path: 0x-prefixed hex, hex, or decimal.
fn id_param(id: &str, what: &str) -> Result<u64, Error> {
    parse_id(id).ok_or_else(|| Error::Param(format!("{id:?} is not a {what}")))
}

async fn session(State(s): St, Path(id): Path<String>, Query(p): Query<AskParams>) -> Response {
    let (id, f) = match id_param(&id, "session id").and_then(|id| Ok((id, p.filter()?))) {
        Ok(v) => v,
        Err(e) => return failed(&e),
    };
    answer(blocking(move || app::session(&*s.index()?, id, &f)).await)
}

async fn zxid(State(s): St, Path(z): Path<String>, Query(p): Query<AskParams>) -> Response {
    let (z, f) = match id_param(&z, "zxid").and_then(|z| Ok((z, p.filter()?))) {
        Ok(v) => v,
        Err(e) => return failed(&e),
    };
    answer(blocking(move || app::zxid(&*s.index()?, z, &f)).await)
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
    match blocking(move || app::skews(&*s.index()?)).await {
        Ok(skews) => (
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            crate::render::html::render(&inc, &skews),
        )
            .into_response(),
        Err(r) => r,
    }
}

async fn skew(State(s): St) -> Response {
    answer(blocking(move || app::skews(&*s.index()?)).await)
}

async fn recipes(State(s): St) -> Response {
    answer(blocking(move || app::recipes(&*s.index()?, &s.cfg.queries)).await)
}

async fn index(State(s): St) -> Response {
    answer(blocking(move || Ok(app::indexed(&*s.index()?))).await)
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
    Json(json!({"sources": list, "refusals": refusals})).into_response()
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
    let _ = writeln!(
        out,
        "# HELP zklens_incidents_detected_total Incidents recognised since start.\n# TYPE zklens_incidents_detected_total counter\nzklens_incidents_detected_total {}",
        m.incidents.load(Ordering::Relaxed)
    );
    let _ = writeln!(
        out,
        "# HELP zklens_incident_detection_seconds How long the last incident detection over the index took (it then rests three times as long).\n# TYPE zklens_incident_detection_seconds gauge\nzklens_incident_detection_seconds {:.6}",
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
