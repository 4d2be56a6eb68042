//! `zklens serve` configuration: a TOML file, overridden by flags and environment variables
//! (the binary maps those onto this struct; this module only defines and loads it).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::discovery::ZkConfig;
use crate::error::{Error, Result};
pub use crate::source::policy::Security;
use crate::time::Tz;

/// Everything `zklens serve` needs.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServeConfig {
    /// HTTP API address (loopback by default).
    pub listen: SocketAddr,
    /// Bearer token required by every endpoint but `/health` (None: no authentication).
    pub token: Option<String>,
    /// How often quiet sources are polled (ms).
    pub poll_ms: u64,
    /// How often the index is committed with every source's checkpoint (ms).
    pub commit_ms: u64,
    /// An entry still being assembled (a possible stack trace) is indexed after this long
    /// without new lines (ms).
    pub flush_ms: u64,
    /// Batches in flight between collectors and the index writer (backpressure bound).
    pub queue: usize,
    /// Extra directories of incident definitions and saved queries.
    pub queries: Vec<PathBuf>,
    /// ZooKeeper discovery (None: no discovery, static sources only).
    pub zookeeper: Option<ZkConfig>,
    /// What discovered sources may read.
    pub security: Security,
    /// The ensemble's own servers: their logs and data directories.
    pub ensemble: Ensemble,
    /// Sources configured by hand (always allowed: the operator wrote them).
    pub sources: Vec<StaticSource>,
    /// Zone of zone-less timestamps in every collected log (an IANA name or `UTC`; default
    /// UTC), as `zklens ingest --tz ZONE`.
    pub tz: Option<String>,
    /// Zones of particular nodes (node name → zone), as `zklens ingest --tz NODE=ZONE`.
    pub node_tz: BTreeMap<String, String>,
    /// Largest transaction log record read, in bytes (default
    /// [`DEFAULT_MAX_RECORD_LEN`](crate::txnlog::DEFAULT_MAX_RECORD_LEN), 2 MiB); raise it for an
    /// ensemble with a larger `jute.maxbuffer`. `--max-record-len`, as `zklens ingest
    /// --max-record-len`.
    pub max_record_len: usize,
    /// Most sessions of a snapshot's session table held (default
    /// [`DEFAULT_MAX_SNAPSHOT_SESSIONS`](crate::txnlog::DEFAULT_MAX_SNAPSHOT_SESSIONS),
    /// 1,000,000); the rest are skipped with a notice. As `zklens ingest
    /// --max-snapshot-sessions`.
    pub max_snapshot_sessions: usize,
    /// A file holding the bearer token (its first line), instead of `token` in this file;
    /// `--token-file` and `ZKLENS_TOKEN` override it.
    pub token_file: Option<PathBuf>,
    /// Names the API answers to in the `Host` header besides loopback names and addresses and
    /// the listen address (`zklens.example.com`; `*`: any). Any other name is refused (421):
    /// a web page that rebinds its own name to 127.0.0.1 cannot read the API.
    pub api_hosts: Vec<String>,
    /// Most events one answer holds ([`DEFAULT_MAX_EVENTS`]); an answer cut here says
    /// `"truncated": true`. `--max-events`.
    pub max_events: usize,
    /// Most bytes of events one answer holds, about ([`DEFAULT_MAX_ANSWER_BYTES`]); an answer
    /// cut here says `"truncated": true`. The skew table, recipe timelines and HTML reports,
    /// one computed whole each, are refused (503) past it instead. `--max-answer-bytes`.
    pub max_answer_bytes: usize,
    /// Time budget of one request that reads the index, in ms
    /// ([`DEFAULT_REQUEST_TIMEOUT_MS`]); past it the request is answered 503.
    /// `--request-timeout-ms`.
    pub request_timeout_ms: u64,
    /// Requests reading the index at once ([`DEFAULT_MAX_REQUESTS`]); more wait (within their
    /// time budget). A request given up still counts until its work has stopped.
    /// `--max-requests`.
    pub max_requests: usize,
    /// Where the service writes what it indexes besides the index.
    pub sinks: Sinks,
    /// What it sends elsewhere as it recognises it.
    pub export: Export,
}

/// `[export]`: what the service sends elsewhere.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Export {
    /// Incidents (and the sessions they expired or moved) as OTLP traces.
    pub otlp: Option<OtlpExport>,
}

/// `[export.otlp]`: each incident the service recognises, as a trace, to an OTLP/HTTP endpoint
/// (`POST /v1/traces`, protobuf), with the traces of the sessions it links to. Sent once it has
/// not changed for `settle_ms`, again when it changes; retried; never in the way of indexing
/// (what cannot be queued is dropped and counted).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OtlpExport {
    /// `http(s)://HOST:4318` (`/v1/traces` is added unless the URL has a path).
    pub endpoint: String,
    /// How long an incident must stay unchanged before it is sent (ms; default 5000).
    #[serde(default = "default_settle_ms")]
    pub settle_ms: u64,
    /// Attempts per trace before it is given up (default 5; waits of 0.5, 1, 2, 4 s between).
    #[serde(default = "default_attempts")]
    pub attempts: u32,
    /// Most sessions' traces sent with one incident (default 50).
    #[serde(default = "default_max_sessions")]
    pub max_sessions: usize,
}

fn default_settle_ms() -> u64 {
    5000
}

fn default_attempts() -> u32 {
    5
}

fn default_max_sessions() -> usize {
    50
}

/// The sinks beside the index.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Sinks {
    /// The event lake, written as the service goes (None: not written).
    pub parquet: Option<ParquetSink>,
}

/// `[sinks.parquet]`: immutable Parquet files of the committed events, in the lake layout of
/// `zklens export` (`ensemble=NAME/date=YYYY-MM-DD/part-NODE-sFROM-TO.parquet`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParquetSink {
    /// The lake directory (created if needed). One service writes a lake's ensemble.
    pub dir: PathBuf,
    /// How often committed events are published, at the latest, in seconds (default 60).
    #[serde(default = "default_publish_s")]
    pub interval_s: u64,
    /// Most events in one publication (its files hold them; default 1,000,000): a backlog,
    /// such as an index older than the lake, is published in pieces of this size.
    #[serde(default = "default_max_rows")]
    pub max_rows: usize,
}

fn default_publish_s() -> u64 {
    60
}

fn default_max_rows() -> usize {
    1_000_000
}

/// Longest secret file read (`token_file`, `auth_file`): a secret is one short line.
pub const MAX_SECRET_FILE: u64 = 64 * 1024;

/// The secret in file `p`: its first line without surrounding white space. An empty one, an
/// unreadable or oversized file is an error naming the file; a file other users may read
/// adds a warning.
pub fn read_secret(p: &Path, warnings: &mut Vec<String>) -> Result<String> {
    use std::io::Read;
    let f = std::fs::File::open(p).map_err(|e| Error::io(p, e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(m) = f.metadata() {
            if m.permissions().mode() & 0o044 != 0 {
                warnings.push(format!(
                    "warning: secret file {} is readable by other users (chmod 600 it)",
                    p.display()
                ));
            }
        }
    }
    let mut text = Vec::new();
    f.take(MAX_SECRET_FILE + 1)
        .read_to_end(&mut text)
        .map_err(|e| Error::io(p, e))?;
    let bad = |offset: u64, reason: &str| Error::BadInput {
        path: p.to_path_buf(),
        offset,
        reason: reason.to_string(),
    };
    if text.len() as u64 > MAX_SECRET_FILE {
        return Err(bad(
            MAX_SECRET_FILE,
            "a secret file holds one short line (64 KiB at most)",
        ));
    }
    let text = std::str::from_utf8(&text)
        .map_err(|e| bad(e.valid_up_to() as u64, "a secret must be UTF-8 text"))?;
    let secret = text.lines().next().unwrap_or("").trim();
    if secret.is_empty() {
        return Err(bad(0, "the secret's first line is empty"));
    }
    Ok(secret.to_string())
}

/// Default of `max_events`: most events in one API answer (`limit=0` or a larger `limit`
/// are cut to it).
pub const DEFAULT_MAX_EVENTS: usize = 10_000;

/// Default of `max_answer_bytes`: most bytes of events in one API answer (32 MiB).
pub const DEFAULT_MAX_ANSWER_BYTES: usize = 32 << 20;

/// Default of `request_timeout_ms`: time budget of one API request reading the index (30 s).
pub const DEFAULT_REQUEST_TIMEOUT_MS: u64 = 30_000;

/// Default of `max_requests`: API requests reading the index at once.
pub const DEFAULT_MAX_REQUESTS: usize = 4;

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 7311)),
            token: None,
            poll_ms: 250,
            commit_ms: 1000,
            flush_ms: 1000,
            queue: 64,
            queries: Vec::new(),
            zookeeper: None,
            security: Security::default(),
            ensemble: Ensemble::default(),
            sources: Vec::new(),
            tz: None,
            node_tz: BTreeMap::new(),
            max_record_len: crate::txnlog::DEFAULT_MAX_RECORD_LEN,
            max_snapshot_sessions: crate::txnlog::DEFAULT_MAX_SNAPSHOT_SESSIONS,
            token_file: None,
            api_hosts: Vec::new(),
            max_events: DEFAULT_MAX_EVENTS,
            max_answer_bytes: DEFAULT_MAX_ANSWER_BYTES,
            request_timeout_ms: DEFAULT_REQUEST_TIMEOUT_MS,
            max_requests: DEFAULT_MAX_REQUESTS,
            sinks: Sinks::default(),
            export: Export::default(),
        }
    }
}

/// The ensemble's servers.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Ensemble {
    /// The ensemble's name (`prod-a`): every event this service indexes carries it, and
    /// incidents never mix two ensembles' servers (default `default`; also `--ensemble`).
    pub name: Option<String>,
    /// One entry per server.
    pub server: Vec<EnsembleServer>,
}

impl Ensemble {
    /// The ensemble's name, [`crate::event::DEFAULT_ENSEMBLE`] when none is set.
    pub fn name(&self) -> &str {
        self.name
            .as_deref()
            .unwrap_or(crate::event::DEFAULT_ENSEMBLE)
    }
}

/// One ZooKeeper server's files.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnsembleServer {
    /// Node name for its events (`zk1`).
    pub node: String,
    /// Its server id (`myid`).
    pub id: Option<u64>,
    /// Its log files (tailed).
    #[serde(default)]
    pub logs: Vec<PathBuf>,
    /// Its data directory (transaction logs in `version-2/` are followed).
    pub data_dir: Option<PathBuf>,
    /// Log format: a format's name, or a layout (detected when absent).
    pub format: Option<String>,
    /// Its logs' layout: a log4j/logback pattern, a Python logging format, or `regex:...`
    /// (wins over `format`).
    #[serde(default)]
    pub layout: Option<String>,
    /// Zone of zone-less timestamps in its logs (else `node_tz`, else `tz`).
    pub tz: Option<String>,
}

/// A source given by hand.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaticSource {
    /// Node name for its events.
    pub node: String,
    /// `file:///...` or `http(s)://...`.
    pub url: String,
    /// Format: a format's name, or a layout (detected when absent).
    pub format: Option<String>,
    /// Its layout: a log4j/logback pattern, a Python logging format, or `regex:...` (wins over
    /// `format`).
    #[serde(default)]
    pub layout: Option<String>,
    /// Zone of zone-less timestamps in it (else `node_tz`, else `tz`).
    #[serde(default)]
    pub tz: Option<String>,
}

impl ServeConfig {
    /// The zone of zone-less timestamps in a source of `node`: the source's own `tz`, else
    /// the node's (`node_tz`), else the default `tz`, else UTC.
    pub fn zone_for(&self, node: &str, own: Option<&str>) -> Result<Tz> {
        let name = own
            .or_else(|| self.node_tz.get(node).map(String::as_str))
            .or(self.tz.as_deref());
        match name {
            Some(z) => z.parse(),
            None => Ok(Tz::Utc),
        }
    }

    /// Checks what loading cannot: every time zone named is known.
    pub fn validate(&self) -> Result<()> {
        let zones = self
            .tz
            .iter()
            .chain(self.node_tz.values())
            .chain(self.sources.iter().filter_map(|s| s.tz.as_ref()))
            .chain(self.ensemble.server.iter().filter_map(|s| s.tz.as_ref()));
        for z in zones {
            z.parse::<Tz>()?;
        }
        if let Some(name) = &self.ensemble.name {
            crate::event::check_ensemble_name(name)
                .map_err(|e| Error::Param(format!("configuration: [ensemble] {e}")))?;
        }
        if let Some(p) = &self.sinks.parquet {
            if !cfg!(feature = "lake") {
                return Err(Error::Param(
                    "configuration: [sinks.parquet] needs a zklens built with the `lake` feature"
                        .into(),
                ));
            }
            if p.interval_s == 0 || p.max_rows == 0 {
                return Err(Error::Param(
                    "configuration: [sinks.parquet] interval_s and max_rows must be at least 1"
                        .into(),
                ));
            }
        }
        if let Some(o) = &self.export.otlp {
            let e = o.endpoint.to_ascii_lowercase();
            if !(e.starts_with("http://") || e.starts_with("https://")) {
                return Err(Error::Param(format!(
                    "configuration: [export.otlp] endpoint {:?}: not an http(s) URL",
                    o.endpoint
                )));
            }
            if o.attempts == 0 {
                return Err(Error::Param(
                    "configuration: [export.otlp] attempts must be at least 1".into(),
                ));
            }
        }
        Ok(())
    }

    /// Reads the secrets given as files (`token_file`, `[zookeeper] auth_file`,
    /// `[zookeeper.sasl] password_file`) into `token`, the ZooKeeper `auth` and the SASL
    /// `password`, and checks them: a secret given both ways, or empty, is an
    /// error naming the setting. Returns warnings for the operator (a secret file any user
    /// may read).
    pub fn resolve_secrets(&mut self) -> Result<Vec<String>> {
        let mut warnings = Vec::new();
        if let Some(p) = &self.token_file {
            if self.token.is_some() {
                return Err(Error::Param(
                    "configuration: both token and token_file are set; keep one".into(),
                ));
            }
            self.token = Some(read_secret(p, &mut warnings)?);
        }
        if self.token.as_deref().is_some_and(|t| t.trim().is_empty()) {
            return Err(Error::Param("configuration: token is empty".into()));
        }
        if let Some(z) = self.zookeeper.as_mut() {
            if let Some(p) = &z.auth_file {
                if z.auth.is_some() {
                    return Err(Error::Param(
                        "configuration: both [zookeeper] auth and auth_file are set; keep one"
                            .into(),
                    ));
                }
                z.auth = Some(read_secret(p, &mut warnings)?);
            }
            if let Some(a) = z.sasl.as_mut() {
                if let Some(p) = &a.password_file {
                    if a.password.is_some() {
                        return Err(Error::Param(
                            "configuration: both [zookeeper.sasl] password and password_file are set; keep one"
                                .into(),
                        ));
                    }
                    a.password = Some(read_secret(p, &mut warnings)?);
                }
            }
        }
        Ok(warnings)
    }

    /// Refuses to serve the API beyond this machine without a token: `listen` on an address
    /// other than loopback needs `token` (`token_file`, `--token-file`, `ZKLENS_TOKEN`).
    pub fn check_exposure(&self) -> Result<()> {
        if self.listen.ip().is_loopback() || self.token.is_some() {
            return Ok(());
        }
        Err(Error::Param(format!(
            "listen = {} is reachable from other machines and no token is set: every indexed log would be readable by anyone who can connect. Set token_file in the configuration, --token-file FILE or ZKLENS_TOKEN, or listen on 127.0.0.1",
            self.listen
        )))
    }

    /// Reads a TOML configuration file.
    pub fn load(path: &Path) -> Result<ServeConfig> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let cfg: ServeConfig = toml::from_str(&text).map_err(|e| Error::BadInput {
            path: path.to_path_buf(),
            offset: e.span().map_or(0, |s| s.start as u64),
            reason: format!("invalid configuration: {}", e.message()),
        })?;
        cfg.validate().map_err(|e| Error::BadInput {
            path: path.to_path_buf(),
            offset: 0,
            reason: format!("invalid configuration: {e}"),
        })?;
        Ok(cfg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<ServeConfig> {
        let dir = tempfile::tempdir().map_err(|e| Error::io(Path::new("tmp"), e))?;
        let p = dir.path().join("zklens.toml");
        std::fs::write(&p, text).map_err(|e| Error::io(&p, e))?;
        ServeConfig::load(&p)
    }

    #[test]
    fn the_ensemble_is_named_in_the_configuration_and_checked() {
        let cfg = load("[ensemble]\nname = \"prod-a\"\n").expect("valid");
        assert_eq!(cfg.ensemble.name(), "prod-a");
        assert_eq!(
            load("").expect("empty").ensemble.name(),
            crate::event::DEFAULT_ENSEMBLE
        );
        let err = load("[ensemble]\nname = \"../etc\"\n")
            .expect_err("a path is no name")
            .to_string();
        assert!(
            err.contains("zklens.toml") && err.contains("ensemble"),
            "{err}"
        );
    }
}
