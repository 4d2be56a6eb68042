//! The HTTP API (axum). Read-only: queries run against the committed index (the same code as
//! the CLI, [`crate::query::exec`]); status comes from [`Shared`](super::Shared).
//!
//! | endpoint | answer |
//! |---|---|
//! | `GET /health` | `{"status":"ok", ...}` (no token needed) |
//! | `GET /api/query?q=&since=&until=&limit=&count=` | `{"total", "events"}` |
//! | `GET /api/sessions/{id}` | `{"summary", "total", "events"}` |
//! | `GET /api/zxids/{zxid}` | `{"total", "events"}` |
//! | `GET /api/incidents` | incidents recognised, with `detected_at` |
//! | `GET /api/incidents/{id}` | one incident (JSON) |
//! | `GET /api/incidents/{id}/html` | its report (self-contained HTML) |
//! | `GET /api/sources` | every source: state, lag, refusals |
//! | `GET /api/registrations` | registrations, up and gone |
//! | `GET /metrics` | Prometheus text format |

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

use crate::event::{hex_id, parse_id};
use crate::query::exec::{self, Search};
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

/// Runs blocking index work off the async workers.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> crate::error::Result<T> + Send + 'static,
) -> Result<T, Response> {
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e @ crate::error::Error::Query(_))) => Err(error(StatusCode::BAD_REQUEST, e)),
        Ok(Err(e)) => Err(error(StatusCode::INTERNAL_SERVER_ERROR, e)),
        Err(e) => Err(error(StatusCode::INTERNAL_SERVER_ERROR, e)),
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

/// Query parameters of `/api/query`.
#[derive(Debug, Deserialize)]
pub struct QueryParams {
    /// Query text.
    #[serde(default)]
    pub q: String,
    /// Lower time bound.
    pub since: Option<String>,
    /// Upper time bound.
    pub until: Option<String>,
    /// At most this many events (default 1000; 0 = all).
    pub limit: Option<usize>,
    /// Only count.
    #[serde(default)]
    pub count: bool,
}

fn limit(l: Option<usize>) -> Option<usize> {
    match l {
        Some(0) => None,
        Some(n) => Some(n),
        None => Some(1000),
    }
}

async fn query(State(s): St, Query(p): Query<QueryParams>) -> Response {
    let search = Search {
        query: p.q,
        since: p.since,
        until: p.until,
        limit: limit(p.limit),
        count: p.count,
    };
    match blocking(move || exec::search(&*s.index()?, &search, &s.cfg.queries, Tz::Utc)).await {
        Ok(found) => Json(found).into_response(),
        Err(r) => r,
    }
}

/// `limit` of the id endpoints.
#[derive(Debug, Deserialize)]
pub struct LimitParam {
    /// At most this many events (default 1000; 0 = all).
    pub limit: Option<usize>,
}

async fn session(State(s): St, Path(id): Path<String>, Query(p): Query<LimitParam>) -> Response {
    let Some(id) = parse_id(&id) else {
        return error(
            StatusCode::BAD_REQUEST,
            format!("{id:?} is not a session id"),
        );
    };
    let limit = limit(p.limit);
    let r = blocking(move || exec::session_events(&*s.index()?, id, limit)).await;
    match r {
        Ok((summary, found)) => Json(json!({
            "session": hex_id(id),
            "summary": summary,
            "total": found.total,
            "events": found.events,
        }))
        .into_response(),
        Err(r) => r,
    }
}

async fn zxid(State(s): St, Path(z): Path<String>, Query(p): Query<LimitParam>) -> Response {
    let Some(z) = parse_id(&z) else {
        return error(StatusCode::BAD_REQUEST, format!("{z:?} is not a zxid"));
    };
    let search = Search {
        query: format!("zxid:{}", hex_id(z)),
        limit: limit(p.limit),
        ..Search::default()
    };
    match blocking(move || exec::search(&*s.index()?, &search, &[], Tz::Utc)).await {
        Ok(found) => Json(found).into_response(),
        Err(r) => r,
    }
}

async fn incidents(State(s): St) -> Response {
    let st = s.status();
    let list: Vec<_> = st.incidents.values().cloned().collect();
    Json(list).into_response()
}

async fn incident(State(s): St, Path(id): Path<String>) -> Response {
    let st = s.status();
    match st.incidents.get(&id) {
        Some(li) => Json(li).into_response(),
        None => error(StatusCode::NOT_FOUND, format!("no incident {id:?}")),
    }
}

async fn incident_html(State(s): St, Path(id): Path<String>) -> Response {
    let Some(inc) = s.status().incidents.get(&id).map(|li| li.incident.clone()) else {
        return error(StatusCode::NOT_FOUND, format!("no incident {id:?}"));
    };
    match blocking(move || exec::skews(&*s.index()?)).await {
        Ok(skews) => (
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            crate::incident::html::render(&inc, &skews),
        )
            .into_response(),
        Err(r) => r,
    }
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
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}
