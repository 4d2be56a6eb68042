//! The CLI's side of `--server URL`: the query commands ask a running `zklens serve` instead of
//! opening a data directory. Every parameter the command has is passed (the window, its zone,
//! the limit, counting) and the answers are the application layer's own types
//! ([`crate::app`]), so a remote answer prints exactly as a local one.

use std::time::Duration;

use serde::de::DeserializeOwned;

use crate::app::{
    Backend, Filter, Found, IncidentEntry, IncidentReport, Indexed, SessionAnswer, Window,
    ZxidAnswer,
};
use crate::error::{Error, Result};
use crate::event::hex_id;
use crate::incident::skew::Skew;

/// A running service.
#[derive(Debug, Clone)]
pub struct Remote {
    base: String,
    token: Option<String>,
    agent: ureq::Agent,
}

/// Query parameters of a request.
type Params = Vec<(&'static str, String)>;

/// The parameters that carry a window (`since`, `until`, `tz`).
pub fn window_params(w: &Window) -> Params {
    let mut p = Vec::new();
    if let Some(s) = &w.since {
        p.push(("since", s.clone()));
    }
    if let Some(u) = &w.until {
        p.push(("until", u.clone()));
    }
    p.push(("tz", w.tz.to_string()));
    p
}

/// The parameters that carry a filter (its window, `limit`: 0 for all, `count`).
pub fn filter_params(f: &Filter) -> Params {
    let mut p = window_params(&f.window);
    p.push(("limit", f.limit.unwrap_or(0).to_string()));
    if f.count {
        p.push(("count", "true".into()));
    }
    p
}

/// A path segment, percent-encoded (incident ids are names, but a user may type anything).
fn segment(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            o.push(b as char);
        } else {
            o.push_str(&format!("%{b:02X}"));
        }
    }
    o
}

impl Remote {
    /// `base` is the service's URL (`http://127.0.0.1:7311`); `token` its bearer token.
    pub fn new(base: &str, token: Option<String>) -> Remote {
        Remote {
            base: base.trim_end_matches('/').to_string(),
            token,
            agent: ureq::Agent::config_builder()
                .timeout_global(Some(Duration::from_secs(60)))
                .http_status_as_error(false)
                .build()
                .into(),
        }
    }

    /// GETs `path` with query parameters and decodes the JSON answer.
    pub fn get<T: DeserializeOwned>(&self, path: &str, params: &[(&str, String)]) -> Result<T> {
        let body = self.fetch(path, params)?;
        serde_json::from_slice(&body).map_err(|e| Error::Remote {
            url: format!("{}{path}", self.base),
            status: None,
            message: format!("unexpected answer: {e}"),
        })
    }

    /// GETs `path` and returns the body as text.
    pub fn get_text(&self, path: &str) -> Result<String> {
        Ok(String::from_utf8_lossy(&self.fetch(path, &[])?).into_owned())
    }

    fn fetch(&self, path: &str, params: &[(&str, String)]) -> Result<Vec<u8>> {
        let url = format!("{}{path}", self.base);
        let mut req = self.agent.get(&url);
        for (k, v) in params {
            req = req.query(k, v);
        }
        if let Some(t) = &self.token {
            req = req.header("Authorization", &format!("Bearer {t}"));
        }
        let fail = |status: Option<u16>, message: String| Error::Remote {
            url: url.clone(),
            status,
            message,
        };
        let mut resp = req.call().map_err(|e| fail(None, e.to_string()))?;
        let status = resp.status().as_u16();
        let body = resp
            .body_mut()
            .with_config()
            .limit(1 << 30)
            .read_to_vec()
            .map_err(|e| fail(Some(status), e.to_string()))?;
        if status != 200 {
            let msg = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_string))
                .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned());
            return Err(fail(Some(status), msg));
        }
        Ok(body)
    }
}

impl Backend for Remote {
    fn search(&self, query: &str, f: &Filter) -> Result<Found> {
        let mut p = filter_params(f);
        p.push(("q", query.to_string()));
        self.get("/api/query", &p)
    }
    fn session(&self, id: u64, f: &Filter) -> Result<SessionAnswer> {
        self.get(&format!("/api/sessions/{}", hex_id(id)), &filter_params(f))
    }
    fn zxid(&self, id: u64, f: &Filter) -> Result<ZxidAnswer> {
        self.get(&format!("/api/zxids/{}", hex_id(id)), &filter_params(f))
    }
    fn incidents(&self, w: &Window) -> Result<Vec<IncidentEntry>> {
        self.get("/api/incidents", &window_params(w))
    }
    fn incident(&self, id: &str) -> Result<IncidentReport> {
        self.get(&format!("/api/incidents/{}", segment(id)), &[])
    }
    fn incident_html(&self, id: &str) -> Result<String> {
        self.get_text(&format!("/api/incidents/{}/html", segment(id)))
    }
    fn skew(&self) -> Result<Vec<Skew>> {
        self.get("/api/skew", &[])
    }
    fn recipes(&self) -> Result<Vec<crate::recipe::Timeline>> {
        self.get("/api/recipes", &[])
    }
    fn indexed(&self) -> Result<Indexed> {
        self.get("/api/index", &[])
    }
}
