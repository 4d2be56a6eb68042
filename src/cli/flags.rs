//! Every flag shared by several commands, defined once (ripgrep's `flags/defs.rs` is the
//! model): the time zone (`--tz`, one value parser, `NODE=TZ` its extended form for ingest),
//! the time window (`--since`/`--until`), the incident definitions (`--queries`), the output
//! format (`-o`: one enum, each command accepting only the formats it can produce, so clap
//! refuses the others with exit 2 and names the ones it supports), and the event options of
//! the query commands (`--limit`, `-c`).

use std::marker::PhantomData;
use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::builder::{PossibleValue, PossibleValuesParser};
use clap::{Arg, ArgMatches, Args, Command, FromArgMatches};

use zklens::app::{Filter, Window};
use zklens::render::OutputFormat;
use zklens::time::{self, Tz};

/// A `--tz` value: a zone, for one node's files when `NODE=` is given.
#[derive(Debug, Clone, PartialEq)]
pub struct Zone {
    /// The node it is for (ingest only); None: everything else.
    pub node: Option<String>,
    /// The zone.
    pub tz: Tz,
}

/// The one parser of `--tz`: `TZ` or `NODE=TZ`, TZ being UTC, an offset or an IANA name.
fn zone(s: &str) -> Result<Zone, String> {
    let (node, z) = match s.split_once('=') {
        Some((n, z)) => (Some(n.to_string()), z),
        None => (None, s),
    };
    let tz = z.parse::<Tz>().map_err(|e| e.to_string())?;
    Ok(Zone { node, tz })
}

/// `--tz`.
#[derive(Debug, Clone, Args)]
pub struct TzFlag {
    /// Time zone of zone-less times: log timestamps (ingest, parse), --since/--until and times
    /// in queries, the dates txnlog dump prints. UTC, an offset (+02:00) or an IANA name
    /// (Europe/Berlin); ingest also takes NODE=TZ for one node's files (repeatable: --tz UTC
    /// --tz zk3=Europe/Berlin)
    #[arg(long = "tz", value_name = "[NODE=]TZ", value_parser = zone, default_value = "UTC")]
    zones: Vec<Zone>,
}

impl TzFlag {
    /// The zone of a command that reads one (the last given); `NODE=TZ` is refused.
    pub fn zone(&self) -> Result<Tz> {
        if let Some(z) = self.zones.iter().find(|z| z.node.is_some()) {
            bail!(
                "--tz {}={}: NODE=TZ is for ingest only",
                z.node.as_deref().unwrap_or_default(),
                z.tz
            );
        }
        Ok(self.zones.last().map_or(Tz::Utc, |z| z.tz))
    }

    /// The zone of every file (the last plain `TZ` given) and each node's own (`NODE=TZ`).
    pub fn per_node(&self) -> (Tz, Vec<(String, Tz)>) {
        let mut all = Tz::Utc;
        let mut nodes = Vec::new();
        for z in &self.zones {
            match &z.node {
                Some(n) => nodes.push((n.clone(), z.tz)),
                None => all = z.tz,
            }
        }
        (all, nodes)
    }
}

/// `--since`, `--until` and the zone their zone-less times are in.
#[derive(Debug, Clone, Args)]
pub struct WindowFlags {
    /// Only what happened at or after this time (events; incidents by their start): RFC 3339,
    /// "2026-11-24 22:02:29" (in --tz), a date, or 15m / 2h / 3d ago
    #[arg(long, value_name = "T")]
    since: Option<String>,
    /// Only what happened before this time
    #[arg(long, value_name = "T")]
    until: Option<String>,
    #[command(flatten)]
    tz: TzFlag,
}

impl WindowFlags {
    /// The window, its bounds checked here (a remote service checks them again).
    pub fn window(&self) -> Result<Window> {
        let tz = self.tz.zone()?;
        let now = time::now_nanos();
        for t in [&self.since, &self.until].into_iter().flatten() {
            time::parse_time(t, tz, now)?;
        }
        Ok(Window {
            since: self.since.clone(),
            until: self.until.clone(),
            tz,
        })
    }
}

/// `--queries`.
#[derive(Debug, Clone, Args)]
pub struct QueriesFlag {
    /// Directory of incident definitions and saved queries (*.toml) overriding queries/
    /// (repeatable)
    #[arg(long = "queries", value_name = "DIR")]
    pub dirs: Vec<PathBuf>,
}

/// Every output format some command produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Aligned columns.
    Table,
    /// Readable text.
    Text,
    /// JSON.
    Json,
    /// One JSON object per line.
    Jsonl,
    /// Comma-separated values with a header.
    Csv,
    /// One self-contained HTML page.
    Html,
    /// ZooKeeper TxnLogToolkit's format.
    Toolkit,
    /// OpenTelemetry's OTLP/JSON (traces).
    OtlpJson,
    /// A ShiViz log (happens-before with vector clocks), its regex first.
    Shiviz,
}

impl Format {
    const ALL: [Format; 9] = [
        Format::Table,
        Format::Text,
        Format::Json,
        Format::Jsonl,
        Format::Csv,
        Format::Html,
        Format::Toolkit,
        Format::OtlpJson,
        Format::Shiviz,
    ];

    fn name(self) -> &'static str {
        match self {
            Format::Table => "table",
            Format::Text => "text",
            Format::Json => "json",
            Format::Jsonl => "jsonl",
            Format::Csv => "csv",
            Format::Html => "html",
            Format::Toolkit => "toolkit",
            Format::OtlpJson => "otlp-json",
            Format::Shiviz => "shiviz",
        }
    }

    fn help(self) -> &'static str {
        match self {
            Format::Table => "Aligned columns",
            Format::Text => "A readable post-mortem, one line per step with its evidence",
            Format::Json => "JSON",
            Format::Jsonl => "One JSON object per line",
            Format::Csv => "Comma-separated values with a header",
            Format::Html => "One self-contained HTML page: space-time diagram and step list",
            Format::Toolkit => "TxnLogToolkit's format (diffable with `zkTxnLogToolkit.sh -d`)",
            Format::OtlpJson => "OpenTelemetry traces as OTLP/JSON (what POST /v1/traces takes)",
            Format::Shiviz => {
                "A ShiViz log: the parser regex, then each step with its vector clock"
            }
        }
    }

    /// How events are written in this format (the event formats only).
    pub fn events(self) -> Result<OutputFormat> {
        Ok(match self {
            Format::Table => OutputFormat::Table,
            Format::Json => OutputFormat::Json,
            Format::Jsonl => OutputFormat::Jsonl,
            Format::Csv => OutputFormat::Csv,
            other => bail!("events cannot be written as {}", other.name()),
        })
    }
}

/// The formats one command produces, and its default.
pub trait Formats {
    /// Accepted by `-o`.
    const ALLOWED: &'static [Format];
    /// Without `-o`.
    const DEFAULT: Format;
}

/// Events (query, session, zxid, run).
#[derive(Debug, Clone, Copy)]
pub struct EventFormats;
impl Formats for EventFormats {
    const ALLOWED: &'static [Format] = &[Format::Table, Format::Json, Format::Jsonl, Format::Csv];
    const DEFAULT: Format = Format::Table;
}

/// Events as `parse` prints them (JSON lines unless asked).
#[derive(Debug, Clone, Copy)]
pub struct ParseFormats;
impl Formats for ParseFormats {
    const ALLOWED: &'static [Format] = EventFormats::ALLOWED;
    const DEFAULT: Format = Format::Jsonl;
}

/// A list (incidents, skew): a table or JSON.
#[derive(Debug, Clone, Copy)]
pub struct ListFormats;
impl Formats for ListFormats {
    const ALLOWED: &'static [Format] = &[Format::Table, Format::Json];
    const DEFAULT: Format = Format::Table;
}

/// One incident: text, JSON or an HTML page.
#[derive(Debug, Clone, Copy)]
pub struct ReportFormats;
impl Formats for ReportFormats {
    const ALLOWED: &'static [Format] = &[Format::Text, Format::Json, Format::Html];
    const DEFAULT: Format = Format::Text;
}

/// A session's or a transaction's trace.
#[derive(Debug, Clone, Copy)]
pub struct TraceFormats;
impl Formats for TraceFormats {
    const ALLOWED: &'static [Format] = &[Format::OtlpJson];
    const DEFAULT: Format = Format::OtlpJson;
}

/// An incident's trace: OTLP/JSON, or a ShiViz log.
#[derive(Debug, Clone, Copy)]
pub struct IncidentTraceFormats;
impl Formats for IncidentTraceFormats {
    const ALLOWED: &'static [Format] = &[Format::OtlpJson, Format::Shiviz];
    const DEFAULT: Format = Format::OtlpJson;
}

/// Transaction log records: the toolkit's text or JSON lines.
#[derive(Debug, Clone, Copy)]
pub struct TxnFormats;
impl Formats for TxnFormats {
    const ALLOWED: &'static [Format] = &[Format::Toolkit, Format::Jsonl];
    const DEFAULT: Format = Format::Toolkit;
}

/// `-o`/`--output`, accepting the formats of `F` only.
#[derive(Debug, Clone, Copy)]
pub struct Output<F> {
    /// The format asked for.
    pub format: Format,
    _formats: PhantomData<F>,
}

const OUTPUT: &str = "output";

impl<F: Formats> FromArgMatches for Output<F> {
    fn from_arg_matches(m: &ArgMatches) -> Result<Self, clap::Error> {
        let name = m.get_one::<String>(OUTPUT).map(String::as_str);
        let format = Format::ALL
            .into_iter()
            .find(|f| Some(f.name()) == name)
            .unwrap_or(F::DEFAULT);
        Ok(Output {
            format,
            _formats: PhantomData,
        })
    }
    fn update_from_arg_matches(&mut self, m: &ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(m)?;
        Ok(())
    }
}

impl<F: Formats> Args for Output<F> {
    fn augment_args(cmd: Command) -> Command {
        let values = F::ALLOWED
            .iter()
            .map(|f| PossibleValue::new(f.name()).help(f.help()));
        cmd.arg(
            Arg::new(OUTPUT)
                .short('o')
                .long("output")
                .value_name("FORMAT")
                .help("Output format")
                .value_parser(PossibleValuesParser::new(values))
                .default_value(F::DEFAULT.name()),
        )
    }
    fn augment_args_for_update(cmd: Command) -> Command {
        Self::augment_args(cmd)
    }
}

/// What the query commands (query, session, zxid, run) take besides their subject.
#[derive(Debug, Clone, Args)]
pub struct EventOpts {
    #[command(flatten)]
    pub window: WindowFlags,
    /// At most this many events (the earliest); 0 = no limit
    #[arg(long, default_value_t = 1000)]
    pub limit: usize,
    #[command(flatten)]
    pub output: Output<EventFormats>,
    /// Print only the number of matching events
    #[arg(short, long)]
    pub count: bool,
}

impl EventOpts {
    /// The filter the application layer takes.
    pub fn filter(&self) -> Result<Filter> {
        Ok(Filter {
            window: self.window.window()?,
            limit: (self.limit > 0).then_some(self.limit),
            count: self.count,
            ..Filter::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct T {
        #[command(flatten)]
        out: Output<ListFormats>,
        #[command(flatten)]
        tz: TzFlag,
    }

    #[test]
    fn output_accepts_only_the_commands_formats() {
        let t = T::try_parse_from(["t"]).expect("defaults");
        assert_eq!(t.out.format, Format::Table);
        let t = T::try_parse_from(["t", "-o", "json"]).expect("json");
        assert_eq!(t.out.format, Format::Json);
        let e = T::try_parse_from(["t", "-o", "html"]).expect_err("html refused");
        assert_eq!(e.exit_code(), 2);
        let msg = e.to_string();
        assert!(msg.contains("table") && msg.contains("json"), "{msg}");
    }

    #[test]
    fn one_zone_parser_with_a_per_node_form() {
        let t =
            T::try_parse_from(["t", "--tz", "+02:00", "--tz", "zk3=Europe/Berlin"]).expect("zones");
        let (all, nodes) = t.tz.per_node();
        assert_eq!(all, Tz::Fixed(7200));
        assert_eq!(nodes.len(), 1);
        assert_eq!(nodes[0].0, "zk3");
        assert!(t.tz.zone().is_err(), "NODE=TZ is for ingest only");
        let t = T::try_parse_from(["t", "--tz=-01:30"]).expect("zone");
        assert_eq!(t.tz.zone().ok(), Some(Tz::Fixed(-5400)));
        assert!(T::try_parse_from(["t", "--tz", "Mars/Olympus"]).is_err());
        assert_eq!(
            T::try_parse_from(["t"]).expect("default").tz.zone().ok(),
            Some(Tz::Utc)
        );
    }
}
