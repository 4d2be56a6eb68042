//! `zklens agent` configuration: a TOML file, overridden by flags and environment variables
//! (the binary maps those onto this struct).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::discovery::ZkConfig;
use crate::error::{Error, Result};
use crate::source::policy::Security;

/// A file the agent follows besides the registrations (a ZooKeeper server's log on its host).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentFile {
    /// Node name its events get (`zk1`).
    pub node: String,
    /// Absolute path.
    pub path: PathBuf,
    /// Format name (detected from the content when absent).
    #[serde(default)]
    pub format: Option<String>,
}

/// Everything `zklens agent` needs.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AgentConfig {
    /// The central service's URL (`http://zklens:7311`).
    pub server: String,
    /// Bearer token for the service (prefer `token_file` or `$ZKLENS_TOKEN`).
    #[serde(skip_serializing)]
    pub token: Option<String>,
    /// A file whose first line is the token.
    pub token_file: Option<PathBuf>,
    /// Host identity: the registrations whose `host` says this are followed (default: the
    /// machine's host name, and then every address of the machine matches too).
    pub host: Option<String>,
    /// Address of its health and metrics endpoint (`/health`, `/metrics`, `/api/status`).
    pub listen: SocketAddr,
    /// Where it keeps its spool and its read positions.
    pub data_dir: Option<PathBuf>,
    /// The ensemble its files belong to (sent as `zklens.ensemble`).
    pub ensemble: Option<String>,
    /// How often files are read (ms).
    pub poll_ms: u64,
    /// An entry still open after this long without new lines is shipped (ms).
    pub flush_ms: u64,
    /// Largest request body before compression (bytes).
    pub max_request_bytes: usize,
    /// Largest spool on disk (bytes). When it is full the agent stops reading until the
    /// service takes some: the files are the buffer.
    pub spool_max_bytes: u64,
    /// ZooKeeper (the connect string is required).
    pub zookeeper: ZkConfig,
    /// What registrations may make it read (`allowed_roots`; `allowed_hosts` is not used: the
    /// agent reads files only).
    pub security: Security,
    /// Files followed besides the registrations' (the ZooKeeper servers' logs on this host).
    pub files: Vec<AgentFile>,
}

impl Default for AgentConfig {
    fn default() -> Self {
        AgentConfig {
            server: String::new(),
            token: None,
            token_file: None,
            host: None,
            listen: SocketAddr::from(([127, 0, 0, 1], 7312)),
            data_dir: None,
            ensemble: None,
            poll_ms: 200,
            flush_ms: 2000,
            max_request_bytes: 1 << 20,
            spool_max_bytes: 256 << 20,
            zookeeper: ZkConfig::default(),
            security: Security::default(),
            files: Vec::new(),
        }
    }
}

impl AgentConfig {
    /// Reads a TOML file (unknown keys refused, naming the file).
    pub fn load(path: &Path) -> Result<AgentConfig> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        toml::from_str(&text).map_err(|e| Error::BadInput {
            path: path.to_path_buf(),
            offset: e.span().map_or(0, |s| s.start as u64),
            reason: format!("invalid configuration: {}", e.message()),
        })
    }

    /// Refuses what cannot work, naming the setting.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Param(m));
        if self.server.is_empty() {
            return bad("the central service's URL is required: --server URL (`server` in the configuration)".into());
        }
        if !(self.server.starts_with("http://") || self.server.starts_with("https://")) {
            return bad(format!("server {:?}: not an http(s) URL", self.server));
        }
        if self.token.as_deref().unwrap_or_default().is_empty() {
            return bad("a token is required: $ZKLENS_TOKEN, --token-file or `token_file` (the service refuses pushes without one)".into());
        }
        if self.max_request_bytes < 1024 {
            return bad("max_request_bytes: at least 1024".into());
        }
        if self.spool_max_bytes < self.max_request_bytes as u64 {
            return bad(
                "spool_max_bytes must hold at least one request (max_request_bytes)".into(),
            );
        }
        for f in &self.files {
            if !f.path.is_absolute() {
                return bad(format!("files: {}: not an absolute path", f.path.display()));
            }
        }
        Ok(())
    }
}
