//! Reading a text log into events: format detection on the file's first lines, then every line
//! through an [`EntryParser`], with notices (naming byte offsets) for invalid UTF-8, NUL bytes,
//! over-long lines and a missing final newline.

use std::io::{self, Read};
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::event::Event;
use crate::parser::format::Format;
use crate::parser::{EntryParser, Notice, Registry, SourceMeta};
use crate::time::Tz;

use super::lines::LineReader;
use super::{sink_error, Batch, Progress, Source, SourceFile};
use crate::checkpoint::{Checkpoint, CheckpointDelta, Coverage};

/// Longest line kept whole (longer lines are cut here and reported).
pub const DEFAULT_MAX_LINE: usize = 1 << 20;
/// Lines sampled to detect a format.
pub const DETECT_LINES: usize = 128;
/// Notices of one kind kept per file before they are summarised.
const MAX_NOTICES: usize = 20;

/// How to read text sources.
#[derive(Debug, Clone)]
pub struct TextOptions {
    /// Force this format instead of detecting one.
    pub format: Option<Arc<Format>>,
    /// Zone of zone-less timestamps.
    pub tz: Tz,
    /// Zones of particular nodes (their logs were written on machines in other zones).
    pub node_tz: Vec<(String, Tz)>,
    /// Longest line kept.
    pub max_line: usize,
}

impl Default for TextOptions {
    fn default() -> Self {
        TextOptions {
            format: None,
            tz: Tz::Utc,
            node_tz: Vec::new(),
            max_line: DEFAULT_MAX_LINE,
        }
    }
}

/// What reading one text source found.
#[derive(Debug, Clone, Default)]
pub struct TextReport {
    /// Name of the format used.
    pub format: String,
    /// Lines read.
    pub lines: u64,
    /// Events produced (entries, after folding continuation lines).
    pub events: u64,
    /// Bytes read.
    pub bytes: u64,
    /// Offset after the last byte read.
    pub end_offset: u64,
    /// Number of the last line read.
    pub end_line: u64,
    /// Things worth telling the user, with offsets.
    pub notices: Vec<Notice>,
    /// How much of the entries read was understood.
    pub coverage: Coverage,
    /// The first entry without a timestamp (its offset and first line, cut at
    /// [`SHOWN_LINE`] characters), when fewer than
    /// [`MIN_TIMESTAMPED`](crate::checkpoint::MIN_TIMESTAMPED) of the entries have one.
    pub first_untimed: Option<Notice>,
}

/// Characters of a line shown in a warning.
pub const SHOWN_LINE: usize = 200;

/// Detects the format of a text source from its first lines.
pub fn detect(file: &SourceFile, gzip: bool, registry: &Registry) -> Result<Arc<Format>> {
    let sample = sample(file, gzip)?;
    let refs: Vec<&[u8]> = sample.iter().map(Vec::as_slice).collect();
    Ok(registry.detect(&refs))
}

/// The first non-empty lines of a text source (at most [`DETECT_LINES`]), the sample its
/// format is chosen (or learned) from.
pub fn sample(file: &SourceFile, gzip: bool) -> Result<Vec<Vec<u8>>> {
    let r = super::open(&file.path, gzip)?;
    let mut lr = LineReader::new(r, 0, 0, 16 * 1024);
    let mut sample: Vec<Vec<u8>> = Vec::new();
    while sample.len() < DETECT_LINES {
        match lr.next_line() {
            Ok(Some(l)) => {
                if !l.bytes.trim_ascii().is_empty() {
                    sample.push(l.bytes.strip_suffix(b"\r").unwrap_or(l.bytes).to_vec());
                }
            }
            Ok(None) => break,
            Err(e) => {
                if sample.is_empty() {
                    return Err(Error::io(&file.path, e));
                }
                break;
            }
        }
    }
    Ok(sample)
}

/// Reads a text source from byte `from` (line number `from_line`) to its end, calling `emit` for
/// every event in order.
pub fn read_text(
    file: &SourceFile,
    gzip: bool,
    from: u64,
    from_line: u64,
    registry: &Registry,
    opts: &TextOptions,
    emit: &mut dyn FnMut(Event) -> Result<()>,
) -> Result<TextReport> {
    let format = match &opts.format {
        Some(f) => f.clone(),
        None => detect(file, gzip, registry)?,
    };
    let node = file.node.as_str();
    let tz = opts
        .node_tz
        .iter()
        .find(|(n, _)| n == node)
        .map(|(_, z)| *z)
        .unwrap_or(opts.tz);
    let meta = SourceMeta {
        node: Arc::from(node),
        ensemble: file.ensemble.clone(),
        source: Arc::from(file.path.to_string_lossy().as_ref()),
        tz,
    };
    let mut parser = EntryParser::new(format.clone(), meta);
    let mut r = super::open(&file.path, gzip)?;
    if from > 0 {
        let skipped = io::copy(&mut (&mut r).take(from), &mut io::sink())
            .map_err(|e| Error::io(&file.path, e))?;
        if skipped < from {
            return Err(Error::BadInput {
                path: file.path.clone(),
                offset: skipped,
                reason: format!("source is shorter than its checkpoint ({from} bytes)"),
            });
        }
    }
    let mut report = TextReport {
        format: format.def.name.clone(),
        ..TextReport::default()
    };
    let mut lr = LineReader::new(r, from, from_line, opts.max_line);
    let mut long_lines = 0u64;
    let mut bad_utf8: Option<u64> = None;
    let mut nul: Option<u64> = None;
    let mut untimed: Option<u64> = None;
    loop {
        let line = match lr.next_line() {
            Ok(Some(l)) => l,
            Ok(None) => break,
            Err(e) => {
                // Keep what was read; report where reading stopped.
                report.notices.push(Notice {
                    offset: lr.offset(),
                    message: format!("read error, stopped here: {e}"),
                });
                break;
            }
        };
        report.lines += 1;
        report.end_line = line.number;
        if line.dropped > 0 {
            long_lines += 1;
            if long_lines <= MAX_NOTICES as u64 {
                report.notices.push(Notice {
                    offset: line.offset,
                    message: format!(
                        "line {} is {} bytes long; only the first {} are indexed",
                        line.number,
                        line.bytes.len() as u64 + line.dropped,
                        line.bytes.len()
                    ),
                });
            }
        }
        let text = match std::str::from_utf8(line.bytes) {
            Ok(t) => Some(t),
            Err(e) => {
                bad_utf8.get_or_insert(line.offset + e.valid_up_to() as u64);
                None
            }
        };
        if nul.is_none() {
            if let Some(i) = memchr::memchr(0, line.bytes) {
                nul = Some(line.offset + i as u64);
            }
        }
        if !line.complete {
            report.notices.push(Notice {
                offset: line.offset,
                message: format!(
                    "the file ends inside line {} (no final newline: truncated, or still being written); the partial line is indexed",
                    line.number
                ),
            });
        }
        let (bytes, offset, number) = (line.bytes, line.offset, line.number);
        if let Some(ev) = parser.push_checked(bytes, text, offset, number) {
            report.events += 1;
            report.coverage.count(&ev);
            if ev.ts.is_none() {
                untimed.get_or_insert(ev.offset);
            }
            emit(ev)?;
        }
    }
    if let Some(ev) = parser.finish() {
        report.events += 1;
        report.coverage.count(&ev);
        if ev.ts.is_none() {
            untimed.get_or_insert(ev.offset);
        }
        emit(ev)?;
    }
    if report.coverage.poorly_timestamped() {
        report.first_untimed = untimed.map(|offset| Notice {
            offset,
            message: line_at(&file.path, gzip, offset).unwrap_or_default(),
        });
    }
    report.end_offset = lr.offset();
    report.bytes = report.end_offset - from;
    if long_lines > MAX_NOTICES as u64 {
        report.notices.push(Notice {
            offset: report.end_offset,
            message: format!("{long_lines} over-long lines in all were cut"),
        });
    }
    if let Some(o) = bad_utf8 {
        report.notices.push(Notice {
            offset: o,
            message: "invalid UTF-8 (first occurrence); such bytes are indexed as U+FFFD".into(),
        });
    }
    if let Some(o) = nul {
        report.notices.push(Notice {
            offset: o,
            message: "NUL byte in text (first occurrence): binary garbage inside the log".into(),
        });
    }
    report.notices.extend(parser.take_notices());
    report.notices.sort_by_key(|n| n.offset);
    Ok(report)
}

/// The line at byte `offset` of a text source, cut at [`SHOWN_LINE`] characters (for a
/// warning that shows it).
fn line_at(path: &std::path::Path, gzip: bool, offset: u64) -> Option<String> {
    let mut r = super::open(path, gzip).ok()?;
    io::copy(&mut (&mut r).take(offset), &mut io::sink()).ok()?;
    let mut buf = Vec::new();
    let cap = (SHOWN_LINE * 4) as u64;
    io::BufRead::read_until(&mut r.take(cap), b'\n', &mut buf).ok()?;
    let text = String::from_utf8_lossy(&buf);
    let line = text.trim_end_matches(['\n', '\r']);
    let mut out: String = line.chars().take(SHOWN_LINE).collect();
    if out.len() < line.len() {
        out.push('…');
    }
    Some(out)
}

/// Events handed to a sink at once by [`TextFile`].
pub const BATCH: usize = 4096;

/// One text file read once, from a checkpoint to its end, as a [`Source`] (the batch reader of
/// `zklens ingest` and `zklens parse`). Its batches carry no delta but the last, which moves the
/// file's checkpoint from where it stood to the end read.
#[derive(Debug)]
pub struct TextFile<'a> {
    file: SourceFile,
    gzip: bool,
    key: String,
    from: Option<Checkpoint>,
    registry: &'a Registry,
    opts: &'a TextOptions,
    report: Option<TextReport>,
}

impl<'a> TextFile<'a> {
    /// Reads `file` from `from` on (None: from its start, whatever was committed for it).
    pub fn new(
        file: SourceFile,
        gzip: bool,
        from: Option<Checkpoint>,
        registry: &'a Registry,
        opts: &'a TextOptions,
    ) -> TextFile<'a> {
        TextFile {
            key: file.path.to_string_lossy().into_owned(),
            file,
            gzip,
            from,
            registry,
            opts,
            report: None,
        }
    }

    /// What reading found, once it was read.
    pub fn report(&self) -> Option<&TextReport> {
        self.report.as_ref()
    }

    /// What reading found (taken).
    pub fn take_report(&mut self) -> Option<TextReport> {
        self.report.take()
    }
}

impl Source for TextFile<'_> {
    fn key(&self) -> &str {
        &self.key
    }

    fn poll(&mut self, emit: &mut dyn FnMut(Batch) -> Result<()>) -> Result<Progress> {
        if self.report.is_some() {
            return Ok(Progress::Done);
        }
        let (offset, line, prior_events) = self
            .from
            .as_ref()
            .map_or((0, 0, 0), |c| (c.offset, c.line, c.events));
        let fp = super::fingerprint(&self.file.path, self.gzip, super::FINGERPRINT_LEN)?;
        let mut batch: Vec<Event> = Vec::with_capacity(BATCH);
        let rep = read_text(
            &self.file,
            self.gzip,
            offset,
            line,
            self.registry,
            self.opts,
            &mut |ev| {
                batch.push(ev);
                if batch.len() >= BATCH {
                    let b = Batch {
                        events: std::mem::replace(&mut batch, Vec::with_capacity(BATCH)),
                        ..Batch::default()
                    };
                    emit(b).map_err(sink_error)?;
                }
                Ok(())
            },
        )?;
        // The file may have grown past the fingerprinted prefix while being read.
        let fp =
            super::fingerprint(&self.file.path, self.gzip, super::FINGERPRINT_LEN).unwrap_or(fp);
        let to = Checkpoint {
            path: self.key.clone(),
            fp: fp.hash,
            fp_len: fp.len,
            offset: rep.end_offset,
            line: rep.end_line,
            node: self.file.node.clone(),
            format: rep.format.clone(),
            events: prior_events + rep.events,
            file: None,
            coverage: Some(
                self.from
                    .as_ref()
                    .and_then(|c| c.coverage)
                    .unwrap_or_default()
                    .plus(rep.coverage),
            ),
        };
        let last = Batch {
            events: batch,
            delta: Some(CheckpointDelta::new(self.from.clone(), to)),
            txn_ranges: Vec::new(),
            txn_ensemble: None,
            bytes: rep.bytes,
            notices: rep.notices.clone(),
        };
        emit(last).map_err(sink_error)?;
        self.report = Some(rep);
        Ok(Progress::Done)
    }
}

/// Parses an in-memory text with a given format (for tests and tools).
pub fn parse_bytes(bytes: &[u8], format: Arc<Format>, meta: SourceMeta) -> Vec<Event> {
    let mut p = EntryParser::new(format, meta);
    let mut out = Vec::new();
    let mut lr = LineReader::new(io::BufReader::new(bytes), 0, 0, DEFAULT_MAX_LINE);
    while let Ok(Some(l)) = lr.next_line() {
        let (b, o, n) = (l.bytes, l.offset, l.number);
        out.extend(p.push(b, o, n));
    }
    out.extend(p.finish());
    out
}
