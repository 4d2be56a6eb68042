//! The `zklens` command line. Exit codes follow ripgrep: 0 found, 1 nothing found, 2 error.

use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};

use zklens::event::{hex_id, parse_id, Event};
use zklens::index::{DataDir, IndexHandle};
use zklens::ingest::{self, IngestOptions, Status};
use zklens::output::{write_events, OutputFormat};
use zklens::parser::Registry;
use zklens::query::{self, exec};
use zklens::source::text::{TextOptions, DEFAULT_MAX_LINE};
use zklens::time;
use zklens::time::Tz;

/// Log aggregator and distributed-trace analyzer for ZooKeeper ensembles and their clients.
#[derive(Debug, Parser)]
#[command(name = "zklens", version, about, long_about = None)]
struct Cli {
    /// Data directory holding the index [default: $XDG_DATA_HOME/zklens or ~/.local/share/zklens]
    #[arg(long, global = true, env = "ZKLENS_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,

    /// Extra directory of format definitions (*.toml), loaded after the embedded ones
    #[arg(
        long = "parsers",
        global = true,
        env = "ZKLENS_PARSERS",
        value_name = "DIR"
    )]
    parsers: Vec<PathBuf>,

    /// Ask a running `zklens serve` (http://HOST:PORT) instead of reading the data directory
    /// (query, session, zxid, incidents, incident)
    #[arg(long, global = true, env = "ZKLENS_SERVER", value_name = "URL")]
    server: Option<String>,

    /// Bearer token for --server (and the token `zklens serve` requires)
    #[arg(
        long,
        global = true,
        env = "ZKLENS_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    token: Option<String>,

    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Parse and index log files or directories (recursively)
    Ingest(IngestArgs),
    /// Search the index: field terms, free text, phrases, AND/OR/NOT, ranges
    Query(QueryArgs),
    /// Every event about one session, across all nodes, in time order
    Session(IdArgs),
    /// Every event about one zxid, across all nodes, in time order
    Zxid(IdArgs),
    /// Run a saved query by name (queries/saved.toml): `zklens run session id=0x...`
    Run(RunArgs),
    /// Each node's clock offset from the ensemble's transaction clock, with bounds, from causality
    Skew {
        /// Output: a table, or JSON
        #[arg(short = 'o', long = "output", value_enum, default_value_t = IncOut::Table)]
        output: IncOut,
    },
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
    Serve(ServeArgs),
    /// Generate a realistic synthetic corpus (for benchmarks), with failovers at known times
    Corpus(CorpusArgs),
}

#[derive(Debug, Subcommand)]
enum TxnlogCmd {
    /// Print every record, in TxnLogToolkit's line format (diffable with
    /// `zkTxnLogToolkit.sh -d`) or as JSON lines
    Dump {
        /// Transaction log files
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Output: the toolkit's text, or one JSON object per record
        #[arg(short = 'o', long = "output", value_enum, default_value_t = TxnOut::Toolkit)]
        output: TxnOut,
        /// Zone for the toolkit's dates (Java's default zone)
        #[arg(long, default_value = "UTC", value_name = "TZ")]
        tz: String,
    },
}

#[derive(Debug, Subcommand)]
enum SnapshotCmd {
    /// Summarise a snapshot: sessions with timeouts, ephemerals by session, seal checks
    Dump {
        /// Snapshot files
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum TxnOut {
    /// TxnLogToolkit's format
    Toolkit,
    /// One JSON object per record
    Jsonl,
}

#[derive(Debug, Args)]
struct BenchArgs {
    /// Corpus size (generated once, reused while it matches)
    #[arg(long, default_value = "1GB")]
    size: String,
    /// Working directory for the corpus and indexes
    #[arg(long, default_value = "target/bench")]
    dir: PathBuf,
    /// Where to write every figure as JSON [default: DIR/bench.json]
    #[arg(long)]
    json: Option<PathBuf>,
    /// Repetitions of each lookup (the median is reported)
    #[arg(long, default_value_t = 5)]
    reps: usize,
    /// A large transaction log to decode against TxnLogToolkit [default: DIR/txnlog/log.*,
    /// generated on a real server by benches/gen-txnlog.py]
    #[arg(long)]
    txnlog: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct ParseArgs {
    /// Files or directories
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Use this format instead of detecting one
    #[arg(long, value_name = "NAME")]
    format: Option<String>,
    /// Time zone of timestamps that carry none
    #[arg(long, default_value = "UTC", value_name = "TZ")]
    tz: String,
    /// Output format for the events
    #[arg(short = 'o', long = "output", value_enum, default_value_t = OutputFormat::Jsonl)]
    output: OutputFormat,
    /// Print only counts by kind and the throughput
    #[arg(long)]
    stats: bool,
}

#[derive(Debug, Args)]
struct CorpusArgs {
    /// Output directory
    out: PathBuf,
    /// Total size (e.g. 100MB, 1GB)
    #[arg(long, default_value = "100MB")]
    size: String,
    /// ZooKeeper servers
    #[arg(long, default_value_t = 5)]
    servers: u32,
    /// Client service instances
    #[arg(long, default_value_t = 6)]
    services: u32,
    /// Random seed (same seed, same corpus)
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// A leader failover every this many seconds of log time
    #[arg(long, default_value_t = 600)]
    failover_every: u64,
}

/// Parses `100MB`, `1.5GB`, `512KiB`, `1000` (bytes).
fn parse_size(s: &str) -> Result<u64> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let n: f64 = t[..split]
        .parse()
        .with_context(|| format!("bad size {s:?}"))?;
    let mult: f64 = match t[split..].trim().to_ascii_uppercase().as_str() {
        "" | "B" => 1.0,
        "K" | "KB" => 1e3,
        "KIB" => 1024.0,
        "M" | "MB" => 1e6,
        "MIB" => 1048576.0,
        "G" | "GB" => 1e9,
        "GIB" => 1073741824.0,
        other => anyhow::bail!("bad size unit {other:?} in {s:?}"),
    };
    Ok((n * mult) as u64)
}

#[derive(Debug, Args)]
struct IngestArgs {
    /// Files or directories
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Use this format for every text file instead of detecting one (see `zklens formats`)
    #[arg(long, value_name = "NAME")]
    format: Option<String>,
    /// Time zone of timestamps that carry none (UTC, +02:00, Europe/Berlin); NODE=TZ sets one
    /// node's zone (repeatable: --tz UTC --tz zk3=Europe/Berlin)
    #[arg(long, default_value = "UTC", value_name = "[NODE=]TZ")]
    tz: Vec<String>,
    /// Attribute every file to this node instead of naming nodes from the directory layout
    #[arg(long, value_name = "NAME")]
    node: Option<String>,
    /// Worker threads [default: one per core]
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Longest line kept; the rest of a longer line is dropped and reported
    #[arg(long, default_value_t = DEFAULT_MAX_LINE, value_name = "BYTES")]
    max_line: usize,
    /// No progress bar and no summary
    #[arg(short, long)]
    quiet: bool,
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// Configuration file (TOML; see README "Running zklens serve")
    #[arg(long, short = 'c', value_name = "FILE")]
    config: Option<PathBuf>,
    /// HTTP API address [default: 127.0.0.1:7311]
    #[arg(long, value_name = "ADDR")]
    listen: Option<std::net::SocketAddr>,
    /// ZooKeeper connect string (host:port,host:port[/chroot]); enables discovery
    #[arg(long, env = "ZKLENS_ZK", value_name = "CONNECT")]
    zk: Option<String>,
    /// Digest auth for ZooKeeper (user:password)
    #[arg(
        long,
        env = "ZKLENS_ZK_AUTH",
        value_name = "USER:PASSWORD",
        hide_env_values = true
    )]
    zk_auth: Option<String>,
    /// The znode services register under
    #[arg(long, value_name = "PATH")]
    services_root: Option<String>,
    /// ZooKeeper session timeout (ms)
    #[arg(long, value_name = "MS")]
    session_timeout: Option<u64>,
    /// Directory discovered file:// sources may be read from (repeatable)
    #[arg(long = "allow-root", value_name = "DIR")]
    allow_root: Vec<PathBuf>,
    /// Host, host:port, IP or CIDR network discovered http(s):// sources may be pulled from (repeatable)
    #[arg(long = "allow-host", value_name = "HOST")]
    allow_host: Vec<String>,
    /// A source to follow: NODE=URL (file:///... or http(s)://...), repeatable
    #[arg(long = "source", value_name = "NODE=URL")]
    source: Vec<String>,
    /// Extra directory of incident definitions and saved queries
    #[arg(long, value_name = "DIR")]
    queries: Vec<PathBuf>,
    /// Commit interval (ms)
    #[arg(long, value_name = "MS")]
    commit_ms: Option<u64>,
    /// Poll interval of quiet sources (ms)
    #[arg(long, value_name = "MS")]
    poll_ms: Option<u64>,
}

#[derive(Debug, Args)]
struct OutArgs {
    /// Only events at or after this time (RFC 3339, "2026-11-24 22:02:29", or 15m / 2h / 3d ago)
    #[arg(long, value_name = "T")]
    since: Option<String>,
    /// Only events before this time
    #[arg(long, value_name = "T")]
    until: Option<String>,
    /// At most this many events (the earliest); 0 = no limit
    #[arg(long, default_value_t = 1000)]
    limit: usize,
    /// Output format
    #[arg(short = 'o', long = "output", value_enum, default_value_t = OutputFormat::Table)]
    output: OutputFormat,
    /// Time zone for zone-less --since/--until and query times
    #[arg(long, default_value = "UTC", value_name = "TZ")]
    tz: String,
    /// Print only the number of matching events
    #[arg(short, long)]
    count: bool,
}

#[derive(Debug, Args)]
struct QueryArgs {
    /// The query, e.g. 'session:0x3000002f45e0000', 'kind:election.* node:zk2', '"Expiring session"'
    query: String,
    #[command(flatten)]
    out: OutArgs,
}

#[derive(Debug, Args)]
struct IdArgs {
    /// The id: 0x-prefixed hex, hex, or decimal
    id: String,
    #[command(flatten)]
    out: OutArgs,
}

#[derive(Debug, Args)]
struct RunArgs {
    /// The saved query's name (without one: list them)
    name: Option<String>,
    /// Parameters as NAME=VALUE
    params: Vec<String>,
    /// Directory holding a saved.toml (and incident definitions) overriding queries/
    #[arg(long, value_name = "DIR")]
    queries: Vec<PathBuf>,
    #[command(flatten)]
    out: OutArgs,
}

#[derive(Debug, Args)]
struct IncidentsArgs {
    /// Only incidents starting at or after this time
    #[arg(long, value_name = "T")]
    since: Option<String>,
    /// Only incidents starting before this time
    #[arg(long, value_name = "T")]
    until: Option<String>,
    /// Output: a table, or JSON
    #[arg(short = 'o', long = "output", value_enum, default_value_t = IncOut::Table)]
    output: IncOut,
    /// Directory of incident definitions overriding queries/*.toml
    #[arg(long, value_name = "DIR")]
    queries: Vec<PathBuf>,
}

#[derive(Debug, Args)]
struct IncidentArgs {
    /// The incident id (from `zklens incidents`)
    id: String,
    /// Output: a readable post-mortem, or JSON
    #[arg(short = 'o', long = "output", value_enum, default_value_t = IncOut::Text)]
    output: IncOut,
    /// Directory of incident definitions overriding queries/*.toml
    #[arg(long, value_name = "DIR")]
    queries: Vec<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum IncOut {
    /// A table (list) or text (one incident)
    Table,
    /// Text
    Text,
    /// JSON
    Json,
    /// One self-contained HTML page: space-time diagram and step list (incident only)
    Html,
}

#[derive(Debug, Args)]
struct FormatsArgs {
    /// Check every rule's examples classify as the rule says; exit 2 if any does not
    #[arg(long)]
    check: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            if is_broken_pipe(&e) {
                return ExitCode::from(0);
            }
            eprintln!("zklens: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
    })
}

fn data_dir(cli: &Cli) -> DataDir {
    if let Some(d) = &cli.data_dir {
        return DataDir::new(d);
    }
    let base = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("."));
    DataDir::new(base.join("zklens"))
}

fn run(cli: Cli) -> Result<u8> {
    let dir = data_dir(&cli);
    if let Cmd::Measure { cmd } = &cli.cmd {
        let mut c = std::process::Command::new(&cmd[0]);
        c.args(&cmd[1..]);
        let r = zklens::devtools::bench::measure(&mut c)?;
        println!("{}", serde_json::to_string(&r)?);
        return Ok(0);
    }
    if let Some(server) = &cli.server {
        if let Some(code) = remote_cmd(&cli, server)? {
            return Ok(code);
        }
    }
    // Only the commands that parse load (and validate) the format definitions.
    let registry = || Registry::load(&cli.parsers).context("loading format definitions");
    match &cli.cmd {
        Cmd::Measure { .. } => Ok(0),
        Cmd::Ingest(a) => cmd_ingest(a, &dir, &registry()?),
        Cmd::Query(a) => {
            let idx = IndexHandle::open(&dir)?;
            let ast = exec::with_incidents(&idx, query::parse(&a.query)?, &[])?;
            cmd_search(&idx, ast, &a.out, None)
        }
        Cmd::Run(a) => {
            let saved = query::saved_queries(&a.queries)?;
            let Some(name) = &a.name else {
                for q in &saved {
                    let p: Vec<String> = q.params.iter().map(|p| format!("{p}=...")).collect();
                    println!("{:<14} {:<16} {}", q.name, p.join(" "), q.description);
                }
                return Ok(0);
            };
            let q = saved
                .iter()
                .find(|q| &q.name == name)
                .with_context(|| format!("no saved query {name:?}; `zklens run` lists them"))?;
            let text = query::fill(q, &a.params)?;
            let idx = IndexHandle::open(&dir)?;
            let ast = exec::with_incidents(&idx, query::parse(&text)?, &a.queries)?;
            cmd_search(&idx, ast, &a.out, None)
        }
        Cmd::Session(a) => {
            let id = parse_id(&a.id).with_context(|| format!("{:?} is not a session id", a.id))?;
            let ast = query::Ast::Term {
                field: Some("session".into()),
                value: hex_id(id),
                quoted: false,
            };
            let idx = IndexHandle::open(&dir)?;
            let head = if a.out.output == OutputFormat::Table && !a.out.count {
                exec::session_summary(&idx, id)?
            } else {
                String::new()
            };
            cmd_search(&idx, ast, &a.out, Some(head))
        }
        Cmd::Zxid(a) => {
            let id = parse_id(&a.id).with_context(|| format!("{:?} is not a zxid", a.id))?;
            let ast = query::Ast::Term {
                field: Some("zxid".into()),
                value: hex_id(id),
                quoted: false,
            };
            let head = format!(
                "zxid {} (epoch {}, counter {}): ",
                hex_id(id),
                id >> 32,
                id & 0xffff_ffff
            );
            cmd_search(&IndexHandle::open(&dir)?, ast, &a.out, Some(head))
        }
        Cmd::Formats(a) => cmd_formats(&registry()?, a.check),
        Cmd::Incidents(a) => cmd_incidents(&dir, a),
        Cmd::Skew { output } => cmd_skew(&dir, *output),
        Cmd::Incident(a) => cmd_incident(&dir, a),
        Cmd::Sources => cmd_sources(&dir),
        Cmd::Parse(a) => cmd_parse(a, &registry()?),
        Cmd::Serve(a) => cmd_serve(a, &cli, &dir, registry()?),
        Cmd::Txnlog(TxnlogCmd::Dump { files, output, tz }) => cmd_txnlog_dump(files, *output, tz),
        Cmd::Snapshot(SnapshotCmd::Dump { files }) => cmd_snapshot_dump(files),
        Cmd::Bench(a) => {
            let spec = zklens::devtools::bench::BenchSpec {
                dir: a.dir.clone(),
                bytes: parse_size(&a.size)?,
                exe: std::env::current_exe().context("locating the zklens binary")?,
                reps: a.reps,
                txnlog: a.txnlog.clone(),
            };
            std::fs::create_dir_all(&a.dir)
                .with_context(|| format!("creating {}", a.dir.display()))?;
            let report =
                zklens::devtools::bench::run(&spec, &mut |m| eprintln!("zklens bench: {m}"))?;
            print!("{}", zklens::devtools::bench::table(&report));
            let json = a.json.clone().unwrap_or_else(|| a.dir.join("bench.json"));
            std::fs::write(&json, serde_json::to_string_pretty(&report)?)
                .with_context(|| format!("writing {}", json.display()))?;
            println!("figures written to {}", json.display());
            Ok(0)
        }
        Cmd::Corpus(a) => {
            let spec = zklens::devtools::corpus::CorpusSpec {
                out: a.out.clone(),
                bytes: parse_size(&a.size)?,
                servers: a.servers,
                services: a.services,
                seed: a.seed,
                start: time::parse_time("2026-11-24T00:00:00Z", Tz::Utc, 0)?,
                failover_every_s: a.failover_every.max(10),
            };
            let m = zklens::devtools::corpus::generate(&spec)?;
            println!(
                "{} files, {:.1} MB, {} lines ({} entries), {} failovers; manifest {}",
                m.files.len(),
                m.bytes as f64 / 1e6,
                m.lines,
                m.entries,
                m.failovers.len(),
                zklens::devtools::corpus::manifest_path(&a.out).display()
            );
            Ok(0)
        }
    }
}

fn cmd_ingest(a: &IngestArgs, dir: &DataDir, registry: &Registry) -> Result<u8> {
    let mut tz = Tz::Utc;
    let mut node_tz = Vec::new();
    for t in &a.tz {
        match t.split_once('=') {
            Some((node, z)) => node_tz.push((node.to_string(), z.parse::<Tz>()?)),
            None => tz = t.parse()?,
        }
    }
    let format = match &a.format {
        Some(n) => Some(
            registry
                .get(n)
                .with_context(|| format!("unknown format {n:?}; `zklens formats` lists them"))?,
        ),
        None => None,
    };
    let opts = IngestOptions {
        text: TextOptions {
            format,
            tz,
            node_tz,
            max_line: a.max_line.max(1024),
            node: a.node.clone(),
        },
        threads: a.threads,
    };
    let bar = if !a.quiet && io::stderr().is_terminal() {
        let b = indicatif::ProgressBar::new(0);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} {bytes}/{total_bytes} {bytes_per_sec} {wide_bar} {eta}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        Some(b)
    } else {
        None
    };
    let progress = |done: u64, total: u64| {
        if let Some(b) = &bar {
            b.set_length(total);
            b.set_position(done);
        }
    };
    let summary = ingest::ingest(&a.paths, dir, registry, &opts, &progress)
        .with_context(|| format!("ingesting into {}", dir.root().display()))?;
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    let mut err = io::stderr().lock();
    for f in &summary.files {
        let p = f.path.display();
        match &f.status {
            Status::Failed(e) => writeln!(err, "zklens: {e}")?,
            Status::Skipped(why) if !a.quiet => writeln!(err, "zklens: {p}: skipped: {why}")?,
            _ => {}
        }
        for n in &f.notices {
            writeln!(
                err,
                "zklens: {p}: at byte offset {}: {}",
                n.offset, n.message
            )?;
        }
    }
    if !a.quiet {
        let mut out = io::stdout().lock();
        let secs = summary.elapsed.as_secs_f64().max(1e-6);
        let indexed = summary
            .files
            .iter()
            .filter(|f| matches!(f.status, Status::Indexed { .. }))
            .count();
        let unchanged = summary
            .files
            .iter()
            .filter(|f| matches!(f.status, Status::Unchanged))
            .count();
        writeln!(
            out,
            "{} files indexed, {} unchanged, {} skipped, {} failed; {} lines, {} events, {:.1} MB in {:.2} s ({:.1} MB/s)",
            indexed,
            unchanged,
            summary.files.len() - indexed - unchanged - summary.failures(),
            summary.failures(),
            summary.lines,
            summary.events,
            summary.bytes as f64 / 1e6,
            secs,
            summary.bytes as f64 / 1e6 / secs
        )?;
        for f in &summary.files {
            if let Status::Indexed {
                format,
                from,
                events,
                ..
            } = &f.status
            {
                let resumed = if *from > 0 {
                    format!(" (from byte {from})")
                } else {
                    String::new()
                };
                let n = if format == "txnlog" {
                    "merged".to_string()
                } else {
                    format!("{events} events")
                };
                writeln!(
                    out,
                    "  {:<10} {:<22} {:>15}  {}{}",
                    f.node,
                    format,
                    n,
                    f.path.display(),
                    resumed
                )?;
            }
        }
        if !summary.kinds.is_empty() {
            writeln!(out, "events by kind:")?;
            let mut kinds: Vec<_> = summary.kinds.iter().collect();
            kinds.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
            for (k, n) in kinds {
                writeln!(out, "  {n:>8}  {k}")?;
            }
        }
    }
    Ok(if summary.failures() > 0 { 2 } else { 0 })
}

fn cmd_search(idx: &IndexHandle, ast: query::Ast, o: &OutArgs, head: Option<String>) -> Result<u8> {
    let tz: Tz = o.tz.parse()?;
    let ast = exec::bounded(ast, o.since.as_deref(), o.until.as_deref(), tz)?;
    let limit = (o.limit > 0).then_some(o.limit);
    let found = exec::run(idx, &ast, tz, limit, o.count)?;
    print_found(found, o, head)
}

/// Prints a search's result the way the query commands do; the exit status says whether
/// anything matched.
fn print_found(found: exec::Found, o: &OutArgs, head: Option<String>) -> Result<u8> {
    let exec::Found { total, events } = found;
    let mut out = io::BufWriter::new(io::stdout().lock());
    if o.count {
        writeln!(out, "{total}")?;
        out.flush()?;
        return Ok(if total > 0 { 0 } else { 1 });
    }
    if o.output == OutputFormat::Table {
        if let Some(h) = head {
            let mut nodes: Vec<&str> = events.iter().map(|e| &*e.node).collect();
            nodes.sort_unstable();
            nodes.dedup();
            write!(out, "{h}")?;
            writeln!(out, "{} events on {}", total, nodes.join(", "))?;
        }
    }
    if !(events.is_empty() && o.output == OutputFormat::Table) {
        write_events(&mut out, &events, o.output)?;
    }
    out.flush()?;
    if total > events.len() {
        eprintln!(
            "zklens: showing the first {} of {} matching events (--limit)",
            events.len(),
            total
        );
    }
    Ok(if total > 0 { 0 } else { 1 })
}

fn cmd_serve(a: &ServeArgs, cli: &Cli, dir: &DataDir, registry: Registry) -> Result<u8> {
    use zklens::serve::config::{ServeConfig, StaticSource};
    let mut cfg = match &a.config {
        Some(p) => ServeConfig::load(p)?,
        None => ServeConfig::default(),
    };
    if let Some(l) = a.listen {
        cfg.listen = l;
    }
    if cli.token.is_some() {
        cfg.token = cli.token.clone();
    }
    if let Some(zk) = &a.zk {
        cfg.zookeeper.get_or_insert_with(Default::default).connect = zk.clone();
    }
    if let Some(z) = cfg.zookeeper.as_mut() {
        if let Some(r) = &a.services_root {
            z.services_root = r.clone();
        }
        if let Some(t) = a.session_timeout {
            z.session_timeout_ms = t;
        }
        if a.zk_auth.is_some() {
            z.auth = a.zk_auth.clone();
        }
    }
    cfg.security
        .allowed_roots
        .extend(a.allow_root.iter().cloned());
    cfg.security
        .allowed_hosts
        .extend(a.allow_host.iter().cloned());
    for s in &a.source {
        let (node, url) = s
            .split_once('=')
            .with_context(|| format!("--source {s:?}: expected NODE=URL"))?;
        cfg.sources.push(StaticSource {
            node: node.to_string(),
            url: url.to_string(),
            format: None,
            tz: None,
        });
    }
    cfg.queries.extend(a.queries.iter().cloned());
    if let Some(c) = a.commit_ms {
        cfg.commit_ms = c;
    }
    if let Some(p) = a.poll_ms {
        cfg.poll_ms = p;
    }
    zklens::serve::run(cfg, dir.clone(), registry)?;
    Ok(0)
}

/// The query commands against a running service (`--server`); None for other commands.
fn remote_cmd(cli: &Cli, server: &str) -> Result<Option<u8>> {
    let r = zklens::remote::Remote::new(server, cli.token.clone());
    let search_params = |o: &OutArgs| {
        let mut p = vec![("limit", o.limit.to_string())];
        if let Some(s) = &o.since {
            p.push(("since", s.clone()));
        }
        if let Some(u) = &o.until {
            p.push(("until", u.clone()));
        }
        if o.count {
            p.push(("count", "true".into()));
        }
        p
    };
    let code = match &cli.cmd {
        Cmd::Query(a) => {
            let mut p = search_params(&a.out);
            p.push(("q", a.query.clone()));
            let found: exec::Found = r.get("/api/query", &p)?;
            print_found(found, &a.out, None)?
        }
        Cmd::Session(a) => {
            let id = parse_id(&a.id).with_context(|| format!("{:?} is not a session id", a.id))?;
            let v: serde_json::Value = r.get(
                &format!("/api/sessions/{}", hex_id(id)),
                &search_params(&a.out),
            )?;
            let found: exec::Found = serde_json::from_value(v.clone())?;
            let head = (a.out.output == OutputFormat::Table && !a.out.count)
                .then(|| v["summary"].as_str().unwrap_or_default().to_string());
            print_found(found, &a.out, head)?
        }
        Cmd::Zxid(a) => {
            let id = parse_id(&a.id).with_context(|| format!("{:?} is not a zxid", a.id))?;
            let found: exec::Found = r.get(
                &format!("/api/zxids/{}", hex_id(id)),
                &search_params(&a.out),
            )?;
            let head = format!(
                "zxid {} (epoch {}, counter {}): ",
                hex_id(id),
                id >> 32,
                id & 0xffff_ffff
            );
            print_found(found, &a.out, Some(head))?
        }
        Cmd::Incidents(a) => {
            let list: Vec<serde_json::Value> = r.get("/api/incidents", &[])?;
            let now = time::now_nanos();
            let bound = |t: &Option<String>| {
                t.as_deref()
                    .map(|t| time::parse_time(t, Tz::Utc, now))
                    .transpose()
            };
            let (since, until) = (bound(&a.since)?, bound(&a.until)?);
            let list: Vec<&serde_json::Value> = list
                .iter()
                .filter(|li| {
                    let t = li["incident"]["started_at"]
                        .as_str()
                        .and_then(|s| time::parse_time(s, Tz::Utc, now).ok())
                        .unwrap_or(0);
                    since.is_none_or(|s| t >= s) && until.is_none_or(|u| t < u)
                })
                .collect();
            let mut out = io::BufWriter::new(io::stdout().lock());
            if a.output == IncOut::Json {
                let inc: Vec<&serde_json::Value> = list.iter().map(|li| &li["incident"]).collect();
                serde_json::to_writer_pretty(&mut out, &inc)?;
                writeln!(out)?;
            } else if !list.is_empty() {
                writeln!(
                    out,
                    "{:<36} {:<16} {:<25} SUMMARY",
                    "ID", "KIND", "STARTED (UTC)"
                )?;
                for li in &list {
                    let i = &li["incident"];
                    writeln!(
                        out,
                        "{:<36} {:<16} {:<25} {}",
                        i["id"].as_str().unwrap_or_default(),
                        i["kind"].as_str().unwrap_or_default(),
                        i["started_at"].as_str().unwrap_or_default(),
                        li["summary"].as_str().unwrap_or_default()
                    )?;
                }
            }
            out.flush()?;
            u8::from(list.is_empty())
        }
        Cmd::Incident(a) => {
            let mut out = io::BufWriter::new(io::stdout().lock());
            if a.output == IncOut::Html {
                let page = r.get_text(&format!("/api/incidents/{}/html", a.id))?;
                write!(out, "{page}")?;
                out.flush()?;
                return Ok(Some(0));
            }
            let li: serde_json::Value = r.get(&format!("/api/incidents/{}", a.id), &[])?;
            if a.output == IncOut::Json {
                serde_json::to_writer_pretty(&mut out, &li["incident"])?;
                writeln!(out)?;
            } else {
                write!(out, "{}", li["text"].as_str().unwrap_or_default())?;
            }
            out.flush()?;
            0
        }
        _ => return Ok(None),
    };
    Ok(Some(code))
}

fn cmd_formats(registry: &Registry, check: bool) -> Result<u8> {
    let mut out = io::stdout().lock();
    for f in registry.formats() {
        writeln!(
            out,
            "{:<24} {}  [{}]",
            f.def.name, f.def.description, f.origin
        )?;
    }
    if !check {
        return Ok(0);
    }
    let failures = zklens::parser::format::check_examples(registry);
    let total: usize = registry.rules().map(|(_, r)| r.examples.len()).sum();
    for fail in &failures {
        writeln!(out, "FAIL {fail}")?;
    }
    writeln!(out, "{} examples checked, {} failed", total, failures.len())?;
    Ok(if failures.is_empty() { 0 } else { 2 })
}

fn cmd_sources(dir: &DataDir) -> Result<u8> {
    let idx = IndexHandle::open(dir)?;
    let mut out = io::stdout().lock();
    writeln!(out, "{} events indexed", idx.num_events())?;
    for s in &idx.state().checkpoints.sources {
        writeln!(
            out,
            "  {:<10} {:<22} {:>8} events  {:>10} bytes  {}",
            s.node, s.format, s.events, s.offset, s.path
        )?;
    }
    Ok(if idx.state().checkpoints.sources.is_empty() {
        1
    } else {
        0
    })
}

fn cmd_parse(a: &ParseArgs, registry: &Registry) -> Result<u8> {
    let opts = TextOptions {
        format: match &a.format {
            Some(n) => Some(
                registry
                    .get(n)
                    .with_context(|| format!("unknown format {n:?}"))?,
            ),
            None => None,
        },
        tz: a.tz.parse()?,
        ..TextOptions::default()
    };
    let (files, errors) = zklens::source::discover(&a.paths);
    let mut failed = errors.len();
    for e in errors {
        eprintln!("zklens: {e}");
    }
    let start = std::time::Instant::now();
    let mut out = io::BufWriter::new(io::stdout().lock());
    let mut kinds: std::collections::BTreeMap<String, u64> = Default::default();
    let (mut bytes, mut lines, mut events) = (0u64, 0u64, 0u64);
    for f in &files {
        let gzip = match f.content {
            zklens::source::Content::Text { gzip } => gzip,
            zklens::source::Content::Empty => continue,
            other => {
                eprintln!("zklens: {}: skipped: {other:?}", f.path.display());
                continue;
            }
        };
        let mut emit = |e: &Event| -> zklens::Result<()> {
            *kinds.entry(e.kind.to_string()).or_default() += 1;
            if !a.stats {
                write_events(&mut out, std::slice::from_ref(e), a.output)
                    .map_err(|err| zklens::Error::io("<stdout>", err))?;
            }
            Ok(())
        };
        match zklens::pipeline::print::print_file(f, gzip, registry, &opts, &mut emit) {
            Ok(rep) => {
                bytes += rep.bytes;
                lines += rep.lines;
                events += rep.events;
                for n in rep.notices {
                    eprintln!(
                        "zklens: {}: at byte offset {}: {}",
                        f.path.display(),
                        n.offset,
                        n.message
                    );
                }
            }
            Err(e) => {
                if let zklens::Error::Io { source, .. } = &e {
                    if source.kind() == io::ErrorKind::BrokenPipe {
                        return Ok(0);
                    }
                }
                failed += 1;
                eprintln!("zklens: {e}");
            }
        }
    }
    out.flush()?;
    if a.stats {
        let secs = start.elapsed().as_secs_f64().max(1e-9);
        writeln!(
            out,
            "{} files, {lines} lines, {events} events, {:.1} MB in {secs:.3} s: {:.1} MB/s, {:.0} lines/s",
            files.len(),
            bytes as f64 / 1e6,
            bytes as f64 / 1e6 / secs,
            lines as f64 / secs
        )?;
        for (k, n) in &kinds {
            writeln!(out, "  {n:>9}  {k}")?;
        }
        out.flush()?;
    }
    Ok(if failed > 0 {
        2
    } else if events > 0 {
        0
    } else {
        1
    })
}

fn cmd_txnlog_dump(files: &[PathBuf], output: TxnOut, tz: &str) -> Result<u8> {
    let tz: chrono_tz::Tz = tz.parse().map_err(|_| {
        anyhow::anyhow!("unknown time zone {tz:?} (an IANA name such as UTC or Europe/Berlin)")
    })?;
    let mut out = io::BufWriter::new(io::stdout().lock());
    let mut failed = false;
    let mut records = 0u64;
    for f in files {
        let mut r = match zklens::txnlog::open_txnlog(f) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("zklens: {e}");
                failed = true;
                continue;
            }
        };
        let res = match output {
            TxnOut::Toolkit => zklens::txnlog::toolkit_dump(&mut r, &tz, &mut out),
            TxnOut::Jsonl => {
                let mut n = 0u64;
                let mut res = Ok(0);
                for rec in r.by_ref() {
                    match rec {
                        Ok(rec) => {
                            if let Err(e) = writeln!(out, "{}", zklens::txnlog::jsonl(&rec)) {
                                res = Err(zklens::Error::io("<stdout>", e));
                                break;
                            }
                            n += 1;
                        }
                        Err(e) => {
                            res = Err(e);
                            break;
                        }
                    }
                }
                res.map(|_| n)
            }
        };
        match res {
            Ok(n) => records += n,
            Err(zklens::Error::Io { source, .. }) if source.kind() == io::ErrorKind::BrokenPipe => {
                return Ok(0)
            }
            Err(e) => {
                eprintln!("zklens: {e}");
                failed = true;
            }
        }
        for n in r.take_notices() {
            eprintln!("zklens: {n}");
        }
    }
    out.flush()?;
    Ok(if failed {
        2
    } else if records > 0 {
        0
    } else {
        1
    })
}

fn cmd_snapshot_dump(files: &[PathBuf]) -> Result<u8> {
    let mut out = io::BufWriter::new(io::stdout().lock());
    let mut failed = false;
    for f in files {
        writeln!(out, "== {}", f.display())?;
        match zklens::txnlog::open_snapshot(f) {
            Ok(mut r) => {
                if let Err(e) = zklens::txnlog::snapshot_summary(&mut r, &mut out) {
                    eprintln!("zklens: {e}");
                    failed = true;
                }
                for n in r.take_notices() {
                    eprintln!("zklens: {n}");
                    failed = true;
                }
            }
            Err(e) => {
                eprintln!("zklens: {e}");
                failed = true;
            }
        }
    }
    out.flush()?;
    Ok(if failed { 2 } else { 0 })
}

fn cmd_incidents(dir: &DataDir, a: &IncidentsArgs) -> Result<u8> {
    let now = time::now_nanos();
    let since = a
        .since
        .as_deref()
        .map(|t| time::parse_time(t, Tz::Utc, now))
        .transpose()?;
    let until = a
        .until
        .as_deref()
        .map(|t| time::parse_time(t, Tz::Utc, now))
        .transpose()?;
    let all = exec::incidents(&IndexHandle::open(dir)?, &a.queries)?;
    let list: Vec<_> = all
        .into_iter()
        .filter(|i| {
            let t = time::parse_time(&i.started_at, Tz::Utc, now).unwrap_or(0);
            since.is_none_or(|s| t >= s) && until.is_none_or(|u| t < u)
        })
        .collect();
    let mut out = io::BufWriter::new(io::stdout().lock());
    if a.output == IncOut::Json {
        serde_json::to_writer_pretty(&mut out, &list)?;
        writeln!(out)?;
    } else if !list.is_empty() {
        writeln!(
            out,
            "{:<36} {:<16} {:<25} SUMMARY",
            "ID", "KIND", "STARTED (UTC)"
        )?;
        for i in &list {
            let summary = zklens::incident::summary(i);
            writeln!(
                out,
                "{:<36} {:<16} {:<25} {}",
                i.id, i.kind, i.started_at, summary
            )?;
        }
    }
    out.flush()?;
    Ok(if list.is_empty() { 1 } else { 0 })
}

fn cmd_incident(dir: &DataDir, a: &IncidentArgs) -> Result<u8> {
    let idx = IndexHandle::open(dir)?;
    let all = exec::incidents(&idx, &a.queries)?;
    let Some(inc) = all.iter().find(|i| i.id == a.id) else {
        let ids: Vec<&str> = all.iter().map(|i| i.id.as_str()).collect();
        anyhow::bail!("no incident {:?}; known: {}", a.id, ids.join(", "));
    };
    let mut out = io::BufWriter::new(io::stdout().lock());
    match a.output {
        IncOut::Json => {
            serde_json::to_writer_pretty(&mut out, inc)?;
            writeln!(out)?;
        }
        IncOut::Text | IncOut::Table => {
            let skews = exec::skews(&idx)?;
            write!(out, "{}", zklens::incident::text_with_skew(inc, &skews))?
        }
        IncOut::Html => {
            let skews = exec::skews(&idx)?;
            write!(out, "{}", zklens::incident::html::render(inc, &skews))?
        }
    }
    out.flush()?;
    Ok(0)
}

fn cmd_skew(dir: &DataDir, output: IncOut) -> Result<u8> {
    let skews = exec::skews(&IndexHandle::open(dir)?)?;
    let mut out = io::BufWriter::new(io::stdout().lock());
    if output == IncOut::Json {
        serde_json::to_writer_pretty(&mut out, &skews)?;
        writeln!(out)?;
    } else if !skews.is_empty() {
        writeln!(
            out,
            "{:<12} {:>12} {:>12} {:>12} {:>7}",
            "NODE", "OFFSET ms", "LOW ms", "HIGH ms", "PAIRS"
        )?;
        for s in &skews {
            writeln!(
                out,
                "{:<12} {:>12.1} {:>12.1} {:>12.1} {:>7}",
                s.node, s.estimate_ms, s.lo_ms, s.hi_ms, s.pairs
            )?;
        }
        writeln!(out, "(offset = the node's clock minus the leader's txn clock; the truth lies between LOW and HIGH)")?;
    }
    out.flush()?;
    Ok(if skews.is_empty() { 1 } else { 0 })
}
