//! The command line: every command's arguments (shared flags are defined once, in [`flags`]),
//! and the commands themselves. `main.rs` parses and dispatches; exit codes follow ripgrep: 0
//! found, 1 nothing found, 2 error, and a closed pipe is not an error ([`exit`], the one place
//! that decides it).

pub mod ask;
pub mod flags;
pub mod ingest;
#[cfg(feature = "lake")]
pub mod lake;
pub mod out;
pub mod sql;
pub mod tools;
pub mod trace;
pub mod txn;

use std::io;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};

use zklens::index::DataDir;
use zklens::source::text::DEFAULT_MAX_LINE;

use flags::{
    EventFormats, EventOpts, IncidentTraceFormats, ListFormats, Output, ParseFormats, QueriesFlag,
    ReportFormats, TraceFormats, TxnFormats, TzFlag, WindowFlags,
};

/// Log aggregator and distributed-trace analyzer for ZooKeeper ensembles and their clients.
#[derive(Debug, Parser)]
#[command(name = "zklens", version, about, long_about = None)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub cmd: Cmd,
}

/// Options of every command.
#[derive(Debug, Args)]
pub struct Global {
    /// Data directory holding the index [default: $XDG_DATA_HOME/zklens or ~/.local/share/zklens]
    #[arg(long, global = true, env = "ZKLENS_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// Extra directory of format definitions (*.toml), loaded after the embedded ones
    #[arg(
        long = "parsers",
        global = true,
        env = "ZKLENS_PARSERS",
        value_name = "DIR"
    )]
    pub parsers: Vec<PathBuf>,

    /// Ask a running `zklens serve` (http://HOST:PORT) instead of reading the data directory
    /// (query, run, session, zxid, incidents, incident, skew, sources)
    #[arg(long, global = true, env = "ZKLENS_SERVER", value_name = "URL")]
    pub server: Option<String>,

    /// Answer session, zxid, incidents, incident, skew, recipes and sql from a lake directory
    /// (`zklens export --out DIR`, or any copy of one) instead of the data directory
    #[cfg(feature = "lake")]
    #[arg(
        long,
        global = true,
        env = "ZKLENS_LAKE",
        value_name = "DIR",
        conflicts_with = "server"
    )]
    pub lake: Option<PathBuf>,

    /// Bearer token for --server (and the token `zklens serve` requires). On the command
    /// line it is visible to every user in `ps`: prefer --token-file or $ZKLENS_TOKEN
    #[arg(
        long,
        global = true,
        env = "ZKLENS_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,

    /// A file whose first line is the bearer token (as --token, not visible in `ps`)
    #[arg(
        long,
        global = true,
        env = "ZKLENS_TOKEN_FILE",
        value_name = "FILE",
        conflicts_with = "token"
    )]
    pub token_file: Option<PathBuf>,
}

/// Flags that carry a secret, by argument id and the safer ways to give it: their values are
/// visible to every user of the machine in `ps` and `/proc/PID/cmdline`.
const SECRET_FLAGS: &[(&str, &str, &str)] = &[
    ("token", "--token", "--token-file FILE or $ZKLENS_TOKEN"),
    (
        "zk_auth",
        "--zk-auth",
        "--zk-auth-file FILE, auth_file in [zookeeper] or $ZKLENS_ZK_AUTH",
    ),
    (
        "zk_sasl_password",
        "--zk-sasl-password",
        "--zk-sasl-password-file FILE, password_file in [zookeeper.sasl] or $ZKLENS_ZK_SASL_PASSWORD",
    ),
];

/// Warnings for the secrets given as command-line flags (not from the environment): each
/// names the flag and the ways to give it that `ps` does not show.
pub fn secret_flag_warnings(m: &clap::ArgMatches) -> Vec<String> {
    let mut levels = vec![m];
    let mut at = m;
    while let Some((_, sub)) = at.subcommand() {
        levels.push(sub);
        at = sub;
    }
    SECRET_FLAGS
        .iter()
        .filter(|(id, _, _)| {
            levels.iter().any(|l| {
                matches!(l.try_get_raw(id), Ok(Some(_)))
                    && l.value_source(id) == Some(clap::parser::ValueSource::CommandLine)
            })
        })
        .map(|(_, flag, instead)| {
            format!("zklens: warning: {flag} on the command line is visible to every user in `ps`; use {instead}")
        })
        .collect()
}

impl Global {
    /// The bearer token: `--token` / `$ZKLENS_TOKEN`, else the first line of `--token-file`.
    pub fn token(&self) -> Result<Option<String>> {
        if let Some(t) = &self.token {
            return Ok(Some(t.clone()));
        }
        match &self.token_file {
            Some(p) => {
                let mut warnings = Vec::new();
                let t = zklens::serve::config::read_secret(p, &mut warnings)?;
                for w in warnings {
                    eprintln!("zklens: {w}");
                }
                Ok(Some(t))
            }
            None => Ok(None),
        }
    }

    /// The data directory: `--data-dir`, `$ZKLENS_DATA_DIR`, else `$XDG_DATA_HOME/zklens` or
    /// `~/.local/share/zklens`.
    pub fn data_dir(&self) -> DataDir {
        if let Some(d) = &self.data_dir {
            return DataDir::new(d);
        }
        let base = std::env::var_os("XDG_DATA_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
            .unwrap_or_else(|| PathBuf::from("."));
        DataDir::new(base.join("zklens"))
    }
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Parse and index log files or directories (recursively)
    Ingest(IngestArgs),
    /// Search the index: field terms, free text, phrases, AND/OR/NOT, ranges
    Query(QueryArgs),
    /// Write events as Parquet, Arrow IPC or JSON lines into a Hive-partitioned lake
    /// (ensemble=NAME/date=YYYY-MM-DD/) that Spark, DuckDB, Trino and DataFusion read
    #[cfg(feature = "lake")]
    Export(ExportArgs),
    /// SQL over the events (DataFusion): the table `events`, from the index or a lake (--lake)
    Sql(SqlArgs),
    /// Every event about one session, across all nodes, in time order
    Session(IdArgs),
    /// Every event about one zxid, across all nodes, in time order
    Zxid(IdArgs),
    /// Run a saved query by name (queries/saved.toml): `zklens run session id=0x...`
    Run(RunArgs),
    /// Each node's clock offset from the ensemble's transaction clock, with bounds, from causality
    Skew(SkewArgs),
    /// Leader elections and locks (Curator, kazoo, sequential znodes) as the txn logs record
    /// them: who held each, from which zxid and time, until when, and why it ended
    Recipes(RecipesArgs),
    /// Incidents detected in the index (leader failovers, session expiries)
    Incidents(IncidentsArgs),
    /// One incident's timeline: a post-mortem, one line per step, with its evidence
    Incident(IncidentArgs),
    /// List the log formats and classification rules (and check them with --check)
    Formats(FormatsArgs),
    /// List the sources in the index and how far each was read
    Sources,
    /// ZooKeeper transaction logs (log.<zxid>, plain or compressed)
    #[command(subcommand)]
    Txnlog(TxnlogCmd),
    /// ZooKeeper snapshots (snapshot.<zxid>, plain, .gz or .snappy)
    #[command(subcommand)]
    Snapshot(SnapshotCmd),
    /// Measure speed and memory against baselines run on the same files (prints a table, writes JSON)
    Bench(BenchArgs),
    /// (internal) run a command and print its wall time and peak RSS as JSON
    #[command(hide = true)]
    Measure {
        /// The command and its arguments
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
        cmd: Vec<String>,
    },
    /// Parse files and print their events without indexing (format check, conversion, timing)
    Parse(ParseArgs),
    /// Run continuously: discover services through ZooKeeper, follow their logs and the
    /// ensemble's, index, detect incidents live, answer over HTTP
    Serve(Box<ServeArgs>),
    /// A session, a transaction or an incident as a distributed trace (OTLP/JSON, sent to an
    /// OTLP/HTTP endpoint with --otlp, or a ShiViz log)
    #[command(subcommand)]
    Trace(TraceCmd),
    /// Run on a host: follow the logs that ZooKeeper registrations place on it (and its
    /// ZooKeeper servers' files) and ship them to `zklens serve` over OTLP/HTTP
    Agent(AgentArgs),
    /// Generate a realistic synthetic corpus (for benchmarks), with failovers at known times
    Corpus(CorpusArgs),
}

/// `txnlog` subcommands.
#[derive(Debug, Subcommand)]
pub enum TxnlogCmd {
    /// Print every record, in TxnLogToolkit's line format (diffable with
    /// `zkTxnLogToolkit.sh -d`) or as JSON lines
    Dump(TxnlogDumpArgs),
}

/// `txnlog dump`.
#[derive(Debug, Args)]
pub struct TxnlogDumpArgs {
    /// Transaction log files
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    #[command(flatten)]
    pub output: Output<TxnFormats>,
    #[command(flatten)]
    pub tz: TzFlag,
    /// Largest record read, in bytes (ZooKeeper's jute.maxbuffer is 1048575 by default); a
    /// longer record is skipped with a notice
    #[arg(long, default_value_t = zklens::txnlog::DEFAULT_MAX_RECORD_LEN, value_name = "BYTES")]
    pub max_record_len: usize,
}

/// `snapshot` subcommands.
#[derive(Debug, Subcommand)]
pub enum SnapshotCmd {
    /// Summarise a snapshot: sessions with timeouts, ephemerals by session, seal checks
    Dump {
        /// Snapshot files
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Most sessions of a snapshot's session table held; the rest are skipped with a notice
        #[arg(long, default_value_t = zklens::txnlog::DEFAULT_MAX_SNAPSHOT_SESSIONS, value_name = "N")]
        max_snapshot_sessions: usize,
    },
}

/// `bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Corpus size (generated once, reused while it matches)
    #[arg(long, default_value = "1GB")]
    pub size: String,
    /// Working directory for the corpus and indexes
    #[arg(long, default_value = "target/bench")]
    pub dir: PathBuf,
    /// Where to write every figure as JSON [default: DIR/bench.json]
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Repetitions of each lookup (the median is reported)
    #[arg(long, default_value_t = 5)]
    pub reps: usize,
    /// A large transaction log to decode against TxnLogToolkit [default: DIR/txnlog/log.*,
    /// generated on a real server by benches/gen-txnlog.py]
    #[arg(long)]
    pub txnlog: Option<PathBuf>,
    /// Sizes of the mixed corpora whose ingest memory is compared (comma-separated; `none` to
    /// skip): peak RSS must stay flat as the corpus grows
    #[arg(long, default_value = "1GB,3GB,6GB", value_name = "SIZES")]
    pub memory_sizes: String,
}

/// What `ingest` and `parse` read: files or directories, their format and their zone.
#[derive(Debug, Args)]
pub struct InputArgs {
    /// Files or directories
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Use this format for every text file instead of detecting one (see `zklens formats`)
    #[arg(long, value_name = "NAME")]
    pub format: Option<String>,
    /// Read every text file with this layout instead of detecting one: a log4j/logback pattern
    /// (`%d [%t] %-5p %c - %m%n`), a Python logging format (`%(asctime)s %(levelname)s
    /// %(name)s: %(message)s`), or `regex:` and a regex with named groups ts, level, thread,
    /// logger, myid, msg
    #[arg(long, value_name = "PATTERN", conflicts_with = "format")]
    pub layout: Option<String>,
    /// Timestamp format of --layout's time: Java letters (`dd/MM/yyyy HH:mm:ss.SSS`, `MMM d
    /// HH:mm:ss`), ISO8601, RFC3339, epoch or epoch_ms [default: any ISO 8601 form]
    #[arg(long, value_name = "SPEC", requires = "layout")]
    pub layout_time: Option<String>,
    /// Attribute every file to this node instead of naming nodes from the paths
    #[arg(long, value_name = "NAME", conflicts_with = "node_from")]
    pub node: Option<String>,
    /// Name each file's node from its nearest directory (`dir`), its file name (`file`), or a
    /// regex over its path whose group `(?P<node>..)`, else first group, is the name (a path it
    /// does not match is an error). Default: the path component that tells the file apart from
    /// the others, and ZooKeeper servers' myid
    #[arg(long, value_name = "dir|file|REGEX")]
    pub node_from: Option<String>,
    /// The ZooKeeper ensemble these files belong to (letters, digits, `-`, `_`, `.`). A file
    /// under a directory named `ensemble=NAME` is in NAME whatever this says [default: default]
    #[arg(long, value_name = "NAME")]
    pub ensemble: Option<String>,
    #[command(flatten)]
    pub tz: TzFlag,
}

/// `parse`.
#[derive(Debug, Args)]
pub struct ParseArgs {
    #[command(flatten)]
    pub input: InputArgs,
    #[command(flatten)]
    pub output: Output<ParseFormats>,
    /// Print only counts by kind and the throughput
    #[arg(long)]
    pub stats: bool,
}

/// `corpus`.
#[derive(Debug, Args)]
pub struct CorpusArgs {
    /// Output directory
    pub out: PathBuf,
    /// Total size (e.g. 100MB, 1GB)
    #[arg(long, default_value = "100MB")]
    pub size: String,
    /// ZooKeeper servers
    #[arg(long, default_value_t = 5)]
    pub servers: u32,
    /// Client service instances
    #[arg(long, default_value_t = 6)]
    pub services: u32,
    /// Random seed (same seed, same corpus)
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// A leader failover every this many seconds of log time
    #[arg(long, default_value_t = 600)]
    pub failover_every: u64,
    /// What the corpus looks like: `classic` (the first bench corpus: one file per log, few
    /// sessions) or `mixed` (millions of sessions, rotated and restarted files, GC logs,
    /// tracebacks, lines no rule knows)
    #[arg(long, default_value = "classic", value_parser = ["classic", "mixed"])]
    pub profile: String,
}

/// `ingest`.
#[derive(Debug, Args)]
pub struct IngestArgs {
    #[command(flatten)]
    pub input: InputArgs,
    /// Worker threads [default: one per core]
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Longest line kept; the rest of a longer line is dropped and reported
    #[arg(long, default_value_t = DEFAULT_MAX_LINE, value_name = "BYTES")]
    pub max_line: usize,
    /// No progress bar and no summary
    #[arg(short, long)]
    pub quiet: bool,
    /// Largest transaction log record read, in bytes (ZooKeeper's jute.maxbuffer is 1048575 by
    /// default); a longer record is skipped with a notice
    #[arg(long, default_value_t = zklens::txnlog::DEFAULT_MAX_RECORD_LEN, value_name = "BYTES")]
    pub max_record_len: usize,
    /// Most sessions of a snapshot's session table held; the rest are skipped with a notice
    #[arg(long, default_value_t = zklens::txnlog::DEFAULT_MAX_SNAPSHOT_SESSIONS, value_name = "N")]
    pub max_snapshot_sessions: usize,
}

/// `serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Configuration file (TOML; see README "Running zklens serve")
    #[arg(long, short = 'c', value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// HTTP API address [default: 127.0.0.1:7311]
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<std::net::SocketAddr>,
    /// ZooKeeper connect string (host:port,host:port[/chroot]); enables discovery
    #[arg(long, env = "ZKLENS_ZK", value_name = "CONNECT")]
    pub zk: Option<String>,
    /// Digest auth for ZooKeeper (user:password). On the command line it is visible to every
    /// user in `ps`: prefer --zk-auth-file or $ZKLENS_ZK_AUTH
    #[arg(
        long,
        env = "ZKLENS_ZK_AUTH",
        value_name = "USER:PASSWORD",
        hide_env_values = true
    )]
    pub zk_auth: Option<String>,
    /// A file whose first line is the ZooKeeper digest auth (user:password), as --zk-auth
    #[arg(
        long,
        env = "ZKLENS_ZK_AUTH_FILE",
        value_name = "FILE",
        conflicts_with = "zk_auth"
    )]
    pub zk_auth_file: Option<PathBuf>,
    /// PEM file of the CA certificates that sign the ZooKeeper servers' certificates: connect
    /// over TLS (secureClientPort; `ca` in [zookeeper.tls])
    #[arg(long, env = "ZKLENS_ZK_TLS_CA", value_name = "FILE")]
    pub zk_tls_ca: Option<PathBuf>,
    /// PEM file of zklens's client certificate, for servers that require client authentication
    /// (ZooKeeper's default); with --zk-tls-key
    #[arg(
        long,
        env = "ZKLENS_ZK_TLS_CERT",
        value_name = "FILE",
        requires = "zk_tls_key"
    )]
    pub zk_tls_cert: Option<PathBuf>,
    /// PEM file of the client certificate's private key
    #[arg(
        long,
        env = "ZKLENS_ZK_TLS_KEY",
        value_name = "FILE",
        requires = "zk_tls_cert"
    )]
    pub zk_tls_key: Option<PathBuf>,
    /// SASL mechanism to authenticate to ZooKeeper with (`mechanism` in [zookeeper.sasl])
    #[arg(long, env = "ZKLENS_ZK_SASL", value_name = "MECH", value_parser = ["digest-md5", "gssapi"])]
    pub zk_sasl: Option<String>,
    /// SASL user: DIGEST-MD5's user name; GSSAPI's server principal primary (default zookeeper)
    #[arg(long, env = "ZKLENS_ZK_SASL_USER", value_name = "USER")]
    pub zk_sasl_user: Option<String>,
    /// SASL DIGEST-MD5 password. On the command line it is visible to every user in `ps`:
    /// prefer --zk-sasl-password-file or $ZKLENS_ZK_SASL_PASSWORD
    #[arg(
        long,
        env = "ZKLENS_ZK_SASL_PASSWORD",
        value_name = "PASSWORD",
        hide_env_values = true
    )]
    pub zk_sasl_password: Option<String>,
    /// A file whose first line is the SASL DIGEST-MD5 password, as --zk-sasl-password
    #[arg(
        long,
        env = "ZKLENS_ZK_SASL_PASSWORD_FILE",
        value_name = "FILE",
        conflicts_with = "zk_sasl_password"
    )]
    pub zk_sasl_password_file: Option<PathBuf>,
    /// A name the API answers to in the Host header besides loopback and the listen address
    /// (repeatable; `api_hosts` in the configuration)
    #[arg(long = "api-host", value_name = "NAME")]
    pub api_host: Vec<String>,
    /// The znode services register under
    #[arg(long, value_name = "PATH")]
    pub services_root: Option<String>,
    /// ZooKeeper session timeout (ms)
    #[arg(long, value_name = "MS")]
    pub session_timeout: Option<u64>,
    /// Directory discovered file:// sources may be read from (repeatable)
    #[arg(long = "allow-root", value_name = "DIR")]
    pub allow_root: Vec<PathBuf>,
    /// Host, host:port, IP or CIDR network discovered http(s):// sources may be pulled from (repeatable)
    #[arg(long = "allow-host", value_name = "HOST")]
    pub allow_host: Vec<String>,
    /// Most discovered sources followed at once (default 256; security.max_sources)
    #[arg(long = "max-sources", value_name = "N")]
    pub max_sources: Option<usize>,
    /// A source to follow: NODE=URL (file:///... or http(s)://...), repeatable
    #[arg(long = "source", value_name = "NODE=URL")]
    pub source: Vec<String>,
    #[command(flatten)]
    pub queries: QueriesFlag,
    /// Commit interval (ms)
    #[arg(long, value_name = "MS")]
    pub commit_ms: Option<u64>,
    /// Poll interval of quiet sources (ms)
    #[arg(long, value_name = "MS")]
    pub poll_ms: Option<u64>,
    /// Most events in one API answer; a longer answer is cut and says `"truncated": true`
    /// [default: 10000; config: max_events]
    #[arg(long, value_name = "N")]
    pub max_events: Option<usize>,
    /// Most bytes of events in one API answer, about; a longer answer is cut and says
    /// `"truncated": true` (a larger skew table, recipe list or HTML report is refused, 503)
    /// [default: 33554432; config: max_answer_bytes]
    #[arg(long, value_name = "BYTES")]
    pub max_answer_bytes: Option<usize>,
    /// Time budget of one API request that reads the index, in ms; past it the request is
    /// answered 503 and its work stops [default: 30000; config: request_timeout_ms]
    #[arg(long, value_name = "MS")]
    pub request_timeout_ms: Option<u64>,
    /// API requests reading the index at once; more wait within their time budget [default: 4;
    /// config: max_requests]
    #[arg(long, value_name = "N")]
    pub max_requests: Option<usize>,
    /// Largest transaction log record read, in bytes; a longer record is skipped with a notice
    /// [default: 2097152; config: max_record_len]
    #[arg(long, value_name = "BYTES")]
    pub max_record_len: Option<usize>,
    /// Most sessions of a snapshot's session table held; the rest are skipped with a notice
    /// [default: 1000000; config: max_snapshot_sessions]
    #[arg(long, value_name = "N")]
    pub max_snapshot_sessions: Option<usize>,
    /// The name of the ensemble this service watches: every event it indexes carries it
    /// [default: default; config: [ensemble] name]
    #[arg(long, value_name = "NAME")]
    pub ensemble: Option<String>,
}

/// `trace`.
#[derive(Debug, Subcommand)]
pub enum TraceCmd {
    /// A session: a root span from createSession to its close or expiry, a span per node that
    /// saw it, its connections, moves and revalidations as span events
    Session(TraceArgs),
    /// A transaction: the client's request and its appearance in each server's log and logs
    Zxid(TraceArgs),
    /// An incident: its election, sync and expiry phases per node, linked to the sessions it
    /// expired or moved (-o shiviz: a ShiViz log with vector clocks)
    Incident(TraceIncidentArgs),
}

/// `trace session|zxid`.
#[derive(Debug, Args)]
pub struct TraceArgs {
    /// The session id or zxid (hex `0x…` or decimal)
    pub id: String,
    #[command(flatten)]
    pub output: Output<TraceFormats>,
    /// Send it to this OTLP/HTTP endpoint (`http://HOST:4318`; `/v1/traces` is added) as
    /// protobuf instead of printing it
    #[arg(long, value_name = "URL")]
    pub otlp: Option<String>,
}

/// `trace incident`.
#[derive(Debug, Args)]
pub struct TraceIncidentArgs {
    /// The incident id (from `zklens incidents`)
    pub id: String,
    #[command(flatten)]
    pub output: Output<IncidentTraceFormats>,
    /// Send it to this OTLP/HTTP endpoint (`http://HOST:4318`; `/v1/traces` is added) as
    /// protobuf instead of printing it
    #[arg(long, value_name = "URL")]
    pub otlp: Option<String>,
    #[command(flatten)]
    pub queries: QueriesFlag,
}

/// `agent`.
#[derive(Debug, Args)]
pub struct AgentArgs {
    /// Configuration file (TOML; see README "zklens agent")
    #[arg(long, short = 'c', value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// ZooKeeper connect string (host:port,host:port[/chroot])
    #[arg(long, env = "ZKLENS_ZK", value_name = "CONNECT")]
    pub zk: Option<String>,
    /// The central service's URL (`http://zklens:7311`); the token is --token-file or
    /// $ZKLENS_TOKEN
    #[arg(long, env = "ZKLENS_SERVER", value_name = "URL")]
    pub server: Option<String>,
    /// Host identity: registrations whose `host` says this are followed [default: the host
    /// name, and then the machine's addresses match too]
    #[arg(long, value_name = "NAME")]
    pub host: Option<String>,
    /// The znode services register under [default: /services]
    #[arg(long, value_name = "PATH")]
    pub services_root: Option<String>,
    /// Directory registered file:// logs may be read from (repeatable)
    #[arg(long = "allow-root", value_name = "DIR")]
    pub allow_root: Vec<PathBuf>,
    /// A file to follow besides the registrations': NODE=PATH (a ZooKeeper server's log),
    /// repeatable
    #[arg(long = "file", value_name = "NODE=PATH")]
    pub file: Vec<String>,
    /// Address of /health and /metrics [default: 127.0.0.1:7312]
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<std::net::SocketAddr>,
    /// ZooKeeper session timeout (ms)
    #[arg(long, value_name = "MS")]
    pub session_timeout: Option<u64>,
    /// Largest spool of unsent requests on disk, in bytes [default: 268435456]
    #[arg(long, value_name = "BYTES")]
    pub spool_max_bytes: Option<u64>,
    /// An entry still open after this long without new lines is shipped (ms) [default: 2000]
    #[arg(long, value_name = "MS")]
    pub flush_ms: Option<u64>,
    /// The ensemble the followed files belong to
    #[arg(long, value_name = "NAME")]
    pub ensemble: Option<String>,
}

/// `query`.
#[derive(Debug, Args)]
pub struct QueryArgs {
    /// The query, e.g. 'session:0x3000002f45e0000', 'kind:election.* node:zk2', '"Expiring session"'
    pub query: String,
    #[command(flatten)]
    pub opts: EventOpts,
    #[command(flatten)]
    pub queries: QueriesFlag,
}

/// `export`.
#[cfg(feature = "lake")]
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// What to export, as a query (`zklens query`'s language); everything when left out
    #[arg(default_value = "*")]
    pub query: String,
    /// File format
    #[arg(long, value_enum, default_value_t = LakeFormat::Parquet)]
    pub format: LakeFormat,
    /// The lake directory (created if needed); the same export again replaces its own files
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    #[command(flatten)]
    pub window: WindowFlags,
    #[command(flatten)]
    pub queries: QueriesFlag,
}

/// `export --format`.
#[cfg(feature = "lake")]
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LakeFormat {
    /// Apache Parquet (ZSTD, page index, bloom filters on session and zxid)
    Parquet,
    /// Arrow IPC file (Feather v2, ZSTD)
    Arrow,
    /// JSON lines
    Jsonl,
}

/// `sql`.
#[derive(Debug, Args)]
pub struct SqlArgs {
    /// One statement over the table `events` (DataFusion's SQL; columns as the lake's, with
    /// `ensemble` and `date`; `zk_id('0x...')` turns a hex id into the table's Int64)
    pub statement: String,
    #[command(flatten)]
    pub output: Output<EventFormats>,
    /// Memory the statement may hold, in MiB (sorts and joins past it fail, saying so)
    #[arg(long, value_name = "MIB", default_value_t = 2048)]
    pub max_memory: usize,
    /// Give up after this many seconds
    #[arg(long, value_name = "SECS")]
    pub timeout: Option<f64>,
}

/// `session` and `zxid`.
#[derive(Debug, Args)]
pub struct IdArgs {
    /// The id: 0x-prefixed hex, hex, or decimal
    pub id: String,
    #[command(flatten)]
    pub opts: EventOpts,
}

/// `run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The saved query's name (without one: list them)
    pub name: Option<String>,
    /// Parameters as NAME=VALUE
    pub params: Vec<String>,
    #[command(flatten)]
    pub queries: QueriesFlag,
    #[command(flatten)]
    pub opts: EventOpts,
}

/// `incidents`.
#[derive(Debug, Args)]
pub struct IncidentsArgs {
    #[command(flatten)]
    pub window: WindowFlags,
    #[command(flatten)]
    pub output: Output<ListFormats>,
    #[command(flatten)]
    pub queries: QueriesFlag,
}

/// `incident`.
#[derive(Debug, Args)]
pub struct IncidentArgs {
    /// The incident id (from `zklens incidents`)
    pub id: String,
    #[command(flatten)]
    pub output: Output<ReportFormats>,
    #[command(flatten)]
    pub queries: QueriesFlag,
}

/// `skew`.
#[derive(Debug, Args)]
pub struct SkewArgs {
    #[command(flatten)]
    pub output: Output<ListFormats>,
}

/// `recipes`.
#[derive(Debug, Args)]
pub struct RecipesArgs {
    /// Only the recipe parents under this znode path (`/election`)
    pub path: Option<String>,
    #[command(flatten)]
    pub window: WindowFlags,
    #[command(flatten)]
    pub queries: QueriesFlag,
    #[command(flatten)]
    pub output: Output<ListFormats>,
}

/// `formats`.
#[derive(Debug, Args)]
pub struct FormatsArgs {
    /// Check every rule's examples classify as the rule says; exit 2 if any does not
    #[arg(long)]
    pub check: bool,
    /// Show, for FILE's first lines, why each candidate format (shipped or learned from the
    /// file) reads them or not, how each scored, and which one is chosen
    #[arg(long, value_name = "FILE", conflicts_with = "check")]
    pub explain: Option<PathBuf>,
    /// With --explain: how many lines to explain
    #[arg(long, default_value_t = 5, requires = "explain")]
    pub lines: usize,
}

/// The process's exit status for a command's outcome: its own code, 2 for an error (printed),
/// 0 when standard output was closed (`zklens query ... | head` is not an error). Commands
/// propagate every failed write to standard output here.
pub fn exit(outcome: Result<u8>) -> ExitCode {
    match outcome {
        Ok(code) => ExitCode::from(code),
        Err(e) if is_broken_pipe(&e) => ExitCode::from(0),
        Err(e) => {
            eprintln!("zklens: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<io::Error>()
            .or_else(|| {
                c.downcast_ref::<zklens::Error>()
                    .and_then(zklens::Error::io_error)
            })
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
    })
}
