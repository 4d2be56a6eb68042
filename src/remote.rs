//! The CLI's side of `--server URL`: the query commands ask a running `zklens serve` instead of
//! opening a data directory.

use std::time::Duration;

use serde::de::DeserializeOwned;

use crate::error::{Error, Result};

/// A running service.
#[derive(Debug, Clone)]
pub struct Remote {
    base: String,
    token: Option<String>,
    agent: ureq::Agent,
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
        serde_json::from_slice(&body)
            .map_err(|e| Error::Query(format!("{}{path}: unexpected answer: {e}", self.base)))
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
        let fail = |m: String| Error::Query(format!("{url}: {m}"));
        let mut resp = req.call().map_err(|e| fail(e.to_string()))?;
        let status = resp.status().as_u16();
        let body = resp
            .body_mut()
            .with_config()
            .limit(1 << 30)
            .read_to_vec()
            .map_err(|e| fail(e.to_string()))?;
        if status != 200 {
            let msg = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_string))
                .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned());
            return Err(fail(format!("HTTP {status}: {msg}")));
        }
        Ok(body)
    }
}
