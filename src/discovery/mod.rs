//! Discovery: the services registered in ZooKeeper and the ensemble itself.
//!
//! A service registers an ephemeral znode under a services root (default `/services`) whose data
//! names its log locations and their format. [`registration`] parses that data (Apache Curator's
//! service-discovery `ServiceInstance` JSON, or a plain JSON registration); [`watch`] follows the
//! tree with `zookeeper-client` and reports what appears and vanishes as [`DiscoveryEvent`]s.
//! The service (`zklens serve`) turns registrations into collectors; discovery itself never reads
//! a log.

pub mod agents;
pub mod host;
pub mod registration;
pub mod secure;
pub mod watch;

use serde::{Deserialize, Serialize};

/// One log a service says it writes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLocation {
    /// `file:///abs/path` or `http(s)://host:port/path`.
    pub url: String,
    /// A zklens format name (`zookeeper-log4j`, `python-logging`, `json-lines`, ...); detected
    /// from the content when absent.
    pub format: Option<String>,
}

/// A service instance found under the services root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registration {
    /// The znode it was read from (`/services/calc/calc-a`).
    pub znode: String,
    /// Service name (`calc`).
    pub service: String,
    /// Instance name (`calc-a`): the node name its events get.
    pub instance: String,
    /// Host, when given.
    pub host: Option<String>,
    /// Its logs.
    pub logs: Vec<LogLocation>,
    /// The session that owns the znode when it is ephemeral (`ephemeralOwner`).
    pub session: Option<u64>,
}

/// A ZooKeeper server of the ensemble (from `/zookeeper/config` or the connect string).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnsembleMember {
    /// Server id (`server.N`), when known.
    pub id: Option<u64>,
    /// Host.
    pub host: String,
    /// Client port, when known.
    pub client_port: Option<u16>,
}

/// What discovery reports, in the order it learns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DiscoveryEvent {
    /// Connected (or reconnected) with this session id.
    Connected {
        /// Session id.
        session: u64,
    },
    /// Lost the connection; the client keeps trying.
    Disconnected,
    /// Our session expired; a new one is being established (registrations are re-listed).
    Expired {
        /// The session that expired.
        session: u64,
    },
    /// A registration appeared or its data changed.
    Registered(Registration),
    /// A registration's znode is gone (its history stays in the index).
    Unregistered {
        /// The znode.
        znode: String,
    },
    /// Znode data that is not a usable registration (not JSON, too large, no logs, ...).
    Rejected {
        /// The znode.
        znode: String,
        /// Why, for the log and the API.
        reason: String,
    },
    /// The ensemble's members, read at start and after each reconnect.
    Ensemble(Vec<EnsembleMember>),
}

/// How to reach ZooKeeper.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ZkConfig {
    /// Connect string: `host:port,host:port[/chroot]`.
    pub connect: String,
    /// Digest auth `user:password`, if any.
    pub auth: Option<String>,
    /// A file holding the digest auth `user:password` (its first line), instead of `auth`:
    /// `zklens serve` reads it into `auth` at start (`--zk-auth-file`, `ZKLENS_ZK_AUTH`
    /// override it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_file: Option<std::path::PathBuf>,
    /// Session timeout (ms).
    pub session_timeout_ms: u64,
    /// The services root (default `/services`).
    pub services_root: String,
    /// Largest znode data accepted as a registration (bytes).
    pub max_data: usize,
    /// TLS to the servers' `secureClientPort` (`[zookeeper.tls]`): every `host:port` of the
    /// connect string is then reached over TLS (`tcp://host:port` keeps one in plaintext).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<ZkTls>,
    /// SASL authentication (`[zookeeper.sasl]`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sasl: Option<ZkSasl>,
}

/// TLS to ZooKeeper: PEM files, read when discovery starts. The servers' certificates must name
/// the host as the connect string gives it (a DNS name or an IP address): hostname verification
/// is always on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZkTls {
    /// The CA certificates (and CRLs) the servers' certificates must chain to.
    pub ca: std::path::PathBuf,
    /// The client's certificate chain, for servers that require client authentication
    /// (ZooKeeper's default, `ssl.clientAuth=need`).
    #[serde(default)]
    pub cert: Option<std::path::PathBuf>,
    /// The private key of `cert` (PKCS#8, PKCS#1 or SEC1 PEM).
    #[serde(default)]
    pub key: Option<std::path::PathBuf>,
}

/// A SASL mechanism ZooKeeper servers offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum SaslMechanism {
    /// DIGEST-MD5 against the server's JAAS `DigestLoginModule` users.
    #[default]
    DigestMd5,
    /// Kerberos (needs zklens built with the `zk-gssapi` feature and a ticket in the
    /// credential cache).
    Gssapi,
}

/// SASL authentication to ZooKeeper.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct ZkSasl {
    /// `digest-md5` (the default) or `gssapi`.
    pub mechanism: SaslMechanism,
    /// DIGEST-MD5: the user name. GSSAPI: the primary of the servers' Kerberos principal
    /// (Java's `zookeeper.sasl.client.username`, default `zookeeper`).
    pub username: Option<String>,
    /// GSSAPI: the instance of the servers' principal (default: each server's host as the
    /// connect string names it).
    pub hostname: Option<String>,
    /// DIGEST-MD5 password (prefer `password_file`: a configuration file is often readable).
    #[serde(skip_serializing)]
    pub password: Option<String>,
    /// A file whose first line is the DIGEST-MD5 password (`--zk-sasl-password-file`,
    /// `ZKLENS_ZK_SASL_PASSWORD` override it).
    pub password_file: Option<std::path::PathBuf>,
}

impl Default for ZkConfig {
    fn default() -> Self {
        ZkConfig {
            connect: "127.0.0.1:2181".into(),
            auth: None,
            auth_file: None,
            session_timeout_ms: 10_000,
            services_root: "/services".into(),
            max_data: 64 * 1024,
            tls: None,
            sasl: None,
        }
    }
}
