//! The agent's files: each followed with a [`Tailer`] (rotation, truncation, restart), its lines
//! cut into whole entries, and shipped as OTLP log records (one per line, with the source's key,
//! the line's offset, number and end, the format, the node) in requests that never split an
//! entry: the service ends a request's last entry with the request.
//!
//! Where an entry ends is the format's business (a stack trace's lines belong to the entry
//! before them), so the agent runs the same [`EntryParser`] the service will, on the same lines,
//! and holds the entry still open until the next one starts or the file is quiet for
//! `flush_ms`. Its format is detected here as the service would, and sent along when it is a
//! format the service knows by name, so both sides cut entries the same way.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use flate2::write::GzEncoder;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;

use crate::checkpoint::Checkpoint;
use crate::parser::format::Format;
use crate::parser::{EntryParser, Registry, SourceMeta};
use crate::source::otlp::attr;
use crate::source::tail::{TailLine, Tailer};
use crate::time::Tz;

/// What the agent knows of a followed file.
#[derive(Debug, Clone)]
pub struct FileSpec {
    /// Source key: `agent://HOST/path`.
    pub key: String,
    /// The file.
    pub path: PathBuf,
    /// Confine every open under this root (registrations' files).
    pub root: Option<PathBuf>,
    /// Node its events get (the registration's instance, or the configured node).
    pub node: String,
    /// The registration's service, when it came from one.
    pub service: Option<String>,
    /// The registration znode it came from.
    pub znode: Option<String>,
    /// Format named by the registration or the configuration.
    pub format: Option<String>,
}

/// One followed file.
#[derive(Debug)]
pub struct Followed {
    /// What it is.
    pub spec: FileSpec,
    tailer: Tailer,
    forced: Option<Arc<Format>>,
    parser: Option<EntryParser>,
    /// The format name sent along (`zklens.format`), once known.
    format_sent: Option<String>,
    /// Lines of the entry still open (all from the tailer's current file).
    held: Vec<TailLine>,
    last_line: Instant,
    /// Lines shipped (this process).
    pub lines: u64,
    /// Bytes shipped (this process).
    pub bytes: u64,
    /// Last notices (rotation, truncation, refusals).
    pub notices: Vec<String>,
}

/// A line ready to ship: the line and the offset just past it in its file.
#[derive(Debug, Clone)]
pub struct Ready {
    /// The line.
    pub line: TailLine,
    /// Offset of the byte after it (its newline included).
    pub end: u64,
}

/// Longest line kept (as the service's followed files).
const MAX_LINE: usize = crate::source::text::DEFAULT_MAX_LINE;

impl Followed {
    /// Follows `spec`, resuming at `resume` (the position of the first line not shipped).
    pub fn new(spec: FileSpec, resume: Option<Checkpoint>, registry: &Registry) -> Followed {
        let mut tailer = Tailer::new(spec.path.clone(), resume, MAX_LINE);
        if let Some(r) = &spec.root {
            tailer = tailer.beneath(r.clone());
        }
        let mut notices = Vec::new();
        let forced = match spec.format.as_deref().map(|f| registry.resolve(f)) {
            Some(Ok(f)) => Some(f),
            Some(Err(e)) => {
                notices.push(format!("{e}; detecting the format from the content"));
                None
            }
            None => None,
        };
        let format_sent = forced.as_ref().map(|f| f.def.name.clone());
        Followed {
            spec,
            tailer,
            forced,
            parser: None,
            format_sent,
            held: Vec::new(),
            last_line: Instant::now(),
            lines: 0,
            bytes: 0,
            notices,
        }
    }

    /// Where a restart continues: the first line not shipped.
    pub fn checkpoint(&self) -> Checkpoint {
        let mut cp = self.tailer.checkpoint();
        if let Some(first) = self.held.first() {
            cp.offset = first.offset;
            cp.line = first.number.saturating_sub(1);
        }
        cp.path = self.spec.key.clone();
        cp.node = self.spec.node.clone();
        cp
    }

    fn note(&mut self, n: String) {
        eprintln!("zklens agent: {}: {n}", self.spec.key);
        self.notices.push(n);
        if self.notices.len() > 5 {
            self.notices.remove(0);
        }
    }

    /// Reads what is new (about `budget` bytes) and returns the lines of the entries now
    /// complete; with `drain`, everything read (the source is going away).
    pub fn poll(
        &mut self,
        registry: &Registry,
        budget: usize,
        flush: Duration,
        drain: bool,
    ) -> Vec<Ready> {
        let batch = match self.tailer.poll(budget) {
            Ok(b) => b,
            Err(e) => {
                self.note(format!("{}: {e}", self.spec.path.display()));
                Default::default()
            }
        };
        for n in batch.notices {
            self.note(n);
        }
        let mut ready: Vec<TailLine> = Vec::new();
        let quiet = batch.lines.is_empty();
        if !quiet {
            self.last_line = Instant::now();
            if self.parser.is_none() {
                self.parser = self.new_parser(registry, &batch.lines);
            }
        }
        for l in batch.lines {
            if l.file_start {
                // A new file: everything before it is complete.
                ready.append(&mut self.held);
                if let Some(p) = self.parser.as_mut() {
                    p.finish();
                }
            }
            if let Some(p) = self.parser.as_mut() {
                p.push(&l.bytes, l.offset, l.number);
            }
            self.held.push(l);
        }
        let open_from = self.parser.as_ref().and_then(EntryParser::pending_start);
        let flushing = drain || (quiet && self.last_line.elapsed() >= flush);
        let cut = if flushing {
            if let Some(p) = self.parser.as_mut() {
                p.finish();
            }
            self.held.len()
        } else {
            match open_from {
                Some((off, _)) => self
                    .held
                    .iter()
                    .position(|l| l.offset >= off)
                    .unwrap_or(self.held.len()),
                None => self.held.len(),
            }
        };
        ready.extend(self.held.drain(..cut));
        let tail_end = self.tailer.checkpoint().offset;
        let next = self.held.first().map(|l| (l.offset, l.file_start));
        let n = ready.len();
        let mut out = Vec::with_capacity(n);
        for i in 0..n {
            let l = &ready[i];
            let own = l.offset + l.bytes.len() as u64 + 1;
            let succ = if i + 1 < n {
                Some((ready[i + 1].offset, ready[i + 1].file_start))
            } else {
                next
            };
            let end = match succ {
                Some((o, false)) if o > l.offset => o,
                Some(_) => own,
                None if tail_end > l.offset => tail_end,
                None => own,
            };
            out.push(Ready {
                line: l.clone(),
                end,
            });
        }
        self.lines += out.len() as u64;
        self.bytes += out
            .iter()
            .map(|r| r.end.saturating_sub(r.line.offset))
            .sum::<u64>();
        out
    }

    /// The entry parser: the forced format, else the one detected from `first` (the first
    /// lines read), as the service's followed files detect theirs.
    fn new_parser(&mut self, registry: &Registry, first: &[TailLine]) -> Option<EntryParser> {
        let format = match &self.forced {
            Some(f) => f.clone(),
            None => {
                // All blank so far: every line is complete, detection waits for content.
                let f = crate::source::follow::detect(registry, first)?;
                // Sent along only when the service can look it up by name.
                if registry.resolve(&f.def.name).is_ok() {
                    self.format_sent = Some(f.def.name.clone());
                }
                f
            }
        };
        Some(EntryParser::new(
            format,
            SourceMeta {
                node: Arc::from(self.spec.node.as_str()),
                ensemble: Arc::from(""),
                source: Arc::from(self.spec.key.as_str()),
                tz: Tz::Utc,
            },
        ))
    }
}

/// Builds one request from the sources' ready lines.
#[derive(Debug, Default)]
pub struct RequestBuilder {
    resources: Vec<ResourceLogs>,
    /// Each source's key with the offset of its first line and past its last.
    pub spans: Vec<super::spool::Span>,
    /// Log bytes in it (what the lines take in their files).
    pub log_bytes: u64,
    /// Lines in it.
    pub lines: u64,
}

fn s(v: &str) -> Option<AnyValue> {
    Some(AnyValue {
        value: Some(any_value::Value::StringValue(v.to_string())),
    })
}

fn i(v: u64) -> Option<AnyValue> {
    Some(AnyValue {
        value: Some(any_value::Value::IntValue(
            i64::try_from(v).unwrap_or(i64::MAX),
        )),
    })
}

fn kv(key: &str, value: Option<AnyValue>) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value,
        ..Default::default()
    }
}

impl RequestBuilder {
    /// Whether nothing was added.
    pub fn is_empty(&self) -> bool {
        self.lines == 0
    }

    /// Adds `f`'s ready lines, as records of its resource.
    pub fn add(&mut self, f: &Followed, host: &str, ensemble: Option<&str>, ready: Vec<Ready>) {
        if ready.is_empty() {
            return;
        }
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(0));
        let mut resource = vec![kv(attr::INSTANCE, s(&f.spec.node)), kv(attr::HOST, s(host))];
        if let Some(svc) = &f.spec.service {
            resource.push(kv(attr::SERVICE, s(svc)));
        }
        if let Some(e) = ensemble {
            resource.push(kv(attr::ENSEMBLE, s(e)));
        }
        let path = f.spec.path.display().to_string();
        if let (Some(first), Some(last)) = (ready.first(), ready.last()) {
            self.spans
                .push((f.spec.key.clone(), first.line.offset, last.end));
        }
        let records = ready
            .into_iter()
            .map(|r| {
                self.log_bytes += r.end.saturating_sub(r.line.offset);
                self.lines += 1;
                let mut attributes = vec![
                    kv(attr::SOURCE, s(&f.spec.key)),
                    kv(attr::OFFSET, i(r.line.offset)),
                    kv(attr::LINE, i(r.line.number)),
                    kv(attr::END, i(r.end)),
                    kv(attr::FILE_PATH, s(&path)),
                ];
                if let Some(fmt) = &f.format_sent {
                    attributes.push(kv(attr::FORMAT, s(fmt)));
                }
                LogRecord {
                    observed_time_unix_nano: now,
                    body: s(&String::from_utf8_lossy(&r.line.bytes)),
                    attributes,
                    ..Default::default()
                }
            })
            .collect();
        self.resources.push(ResourceLogs {
            resource: Some(Resource {
                attributes: resource,
                ..Default::default()
            }),
            scope_logs: vec![ScopeLogs {
                log_records: records,
                ..Default::default()
            }],
            ..Default::default()
        });
    }

    /// The request body: protobuf, gzip'd.
    pub fn finish(self) -> std::io::Result<Vec<u8>> {
        let req = ExportLogsServiceRequest {
            resource_logs: self.resources,
        };
        let raw = req.encode_to_vec();
        let mut gz = GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&raw)?;
        gz.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(path: &std::path::Path) -> FileSpec {
        FileSpec {
            key: format!("agent://h1{}", path.display()),
            path: path.to_path_buf(),
            root: None,
            node: "zk1".into(),
            service: None,
            znode: None,
            format: None,
        }
    }

    /// The first `n` lines of a real ZooKeeper log (line 94 starts an entry whose stack trace
    /// runs on the lines after it).
    fn zk_lines(n: usize) -> Vec<String> {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/samples/incident-1/zk1/logs/zookeeper.log"
        ))
        .expect("sample");
        text.lines().take(n).map(str::to_string).collect()
    }

    #[test]
    fn requests_are_cut_between_entries_and_ends_are_the_next_lines_offsets() {
        let registry = Registry::load(&[] as &[&std::path::Path]).expect("formats");
        let d = tempfile::tempdir().expect("tmp");
        let p = d.path().join("zookeeper.log");
        let lines = zk_lines(140);
        // Up to the middle of the stack trace that starts at line 95.
        let mut f = std::fs::File::create(&p).expect("create");
        for l in &lines[..100] {
            writeln!(f, "{l}").expect("write");
        }
        f.flush().expect("flush");
        let mut fl = Followed::new(spec(&p), None, &registry);
        let long = Duration::from_secs(3600);
        let first = fl.poll(&registry, 1 << 20, long, false);
        // Line 94 opens the entry the trace belongs to: it and everything after it are held.
        let last = first.last().expect("lines").line.number;
        assert!(
            last < 94,
            "the open entry is held back, got up to line {last}"
        );
        assert!(
            lines[last as usize].starts_with("20"),
            "the cut is at an entry's first line: {}",
            lines[last as usize]
        );
        for w in first.windows(2) {
            assert_eq!(
                w[0].end, w[1].line.offset,
                "a line ends where the next starts"
            );
        }
        assert_eq!(fl.checkpoint().offset, first.last().map_or(0, |r| r.end));
        // The rest of the trace, and the next entry: the held entry goes out whole.
        for l in &lines[100..140] {
            writeln!(f, "{l}").expect("write");
        }
        f.flush().expect("flush");
        let second = fl.poll(&registry, 1 << 20, long, false);
        assert_eq!(second.first().map(|r| r.line.number), Some(last + 1));
        assert!(second.iter().any(|r| r.line.bytes.starts_with(b"\tat ")));
        // Quiet past flush: the entry still open goes too, ending where the file ends.
        let third = fl.poll(&registry, 1 << 20, Duration::ZERO, false);
        let all: Vec<&Ready> = first.iter().chain(&second).chain(&third).collect();
        assert_eq!(all.len(), 140, "every line once");
        let size = std::fs::metadata(&p).expect("stat").len();
        assert_eq!(all.last().map(|r| r.end), Some(size));
        assert_eq!(fl.checkpoint().offset, size);
    }

    #[test]
    fn a_request_decodes_to_the_records_the_service_reads() {
        let registry = Registry::load(&[] as &[&std::path::Path]).expect("formats");
        let d = tempfile::tempdir().expect("tmp");
        let p = d.path().join("zookeeper.log");
        let mut text = zk_lines(20).join("\n");
        text.push('\n');
        std::fs::write(&p, &text).expect("write");
        let mut fl = Followed::new(spec(&p), None, &registry);
        // Read, then quiet: the last entry goes out too.
        let mut ready = fl.poll(&registry, 1 << 20, Duration::ZERO, false);
        assert_eq!(
            ready.len(),
            19,
            "the last entry waits for the next line or quiet"
        );
        ready.extend(fl.poll(&registry, 1 << 20, Duration::ZERO, false));
        let mut req = RequestBuilder::default();
        req.add(&fl, "h1", Some("prod"), ready);
        assert_eq!(req.log_bytes, text.len() as u64);
        let body = req.finish().expect("gzip");
        let plain = crate::source::otlp::decompress(&body, Some("gzip"), 1 << 20).expect("gunzip");
        let recs = crate::source::otlp::decode(
            &plain,
            crate::source::otlp::Encoding::Protobuf,
            &crate::source::otlp::Limits::default(),
        )
        .expect("decode");
        assert_eq!(recs.len(), 20);
        let r = &recs[1];
        assert_eq!(r.node, "zk1");
        assert_eq!(r.source, format!("agent://h1{}", p.display()));
        assert_eq!(r.ensemble.as_deref(), Some("prod"));
        assert_eq!(r.line, Some(2));
        assert_eq!(r.offset, Some(recs[0].end.expect("end")));
        assert_eq!(r.format.as_deref(), Some("zookeeper-log4j"));
    }
}
