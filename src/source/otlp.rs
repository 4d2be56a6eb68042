//! OTLP/HTTP logs (`POST /v1/logs`), the protocol Vector, Fluent Bit, the OpenTelemetry
//! Collector and `zklens agent` ship logs with: a request body (protobuf or JSON, gzip or not)
//! decoded within limits into [`Record`]s, one log line each, with the node it came from, the
//! source it belongs to and, when the shipper sends them, its byte offset and line number in that
//! source (what makes a resend recognisable).
//!
//! What a record's fields come from (OpenTelemetry's semantic conventions first, then zklens's
//! own attributes, which `zklens agent` sets):
//!
//! | field | from |
//! |---|---|
//! | node | resource `service.instance.id`, else `host.name` (resource, then record), else `unknown` |
//! | ensemble | `zklens.ensemble` (record, then resource) |
//! | source | `zklens.source`; else `otlp://NODE` + `log.file.path`; else `otlp://NODE/` + `service.name` |
//! | offset | `zklens.offset`, else `log.file.offset` (an integer, or its decimal text) |
//! | line | `zklens.line`, else `log.file.record_number` (which counts records: a multi-line record is one) |
//! | end | `zklens.end`: the offset past the line (the next line's), when the body is not the file's bytes |
//! | format | `zklens.format` (a format name, as `--format`) |
//! | time | the record's `time_unix_nano`, else `observed_time_unix_nano` (0: none) |
//! | body | the record's body: a string as it is, anything else as JSON text |
//!
//! Every other attribute of the record is kept as text. Hostile bodies: the body is read
//! whole before decoding, within [`Limits::max_body`] after decompression; the decoders are
//! bounded by that input (prost and serde_json stop deep nesting), and a request holding more
//! than [`Limits::max_records`] records is refused whole.

use std::io::Read;

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use prost::Message;

use std::sync::Arc;

use crate::checkpoint::{Checkpoint, CheckpointDelta};
use crate::error::{Error, Result};
use crate::event::Event;
use crate::parser::{Notice, Registry};
use crate::sink::Batch;

use super::fnv1a;
use super::follow::{Assembler, FollowSpec};
use super::tail::TailLine;

/// The attribute names zklens reads (and `zklens agent` writes).
pub mod attr {
    /// The source's key, as the agent's checkpoint names it.
    pub const SOURCE: &str = "zklens.source";
    /// Byte offset of the line in its source.
    pub const OFFSET: &str = "zklens.offset";
    /// Line number (1-based) of the line in its source.
    pub const LINE: &str = "zklens.line";
    /// Offset just past the line in its source (its newline included): where the next line
    /// starts, also when the body was cut or its bytes were not UTF-8.
    pub const END: &str = "zklens.end";
    /// The format to parse the source's lines with.
    pub const FORMAT: &str = "zklens.format";
    /// The ensemble the node belongs to.
    pub const ENSEMBLE: &str = "zklens.ensemble";
    /// OpenTelemetry's file path (the filelog receiver's `include_file_path`).
    pub const FILE_PATH: &str = "log.file.path";
    /// A file offset under the same namespace (Vector's `offset_key`, when set to it).
    pub const FILE_OFFSET: &str = "log.file.offset";
    /// The line's number in that file (the OpenTelemetry Collector's filelog receiver with
    /// `include_file_record_number: true`).
    pub const FILE_RECORD_NUMBER: &str = "log.file.record_number";
    /// OpenTelemetry's host name.
    pub const HOST: &str = "host.name";
    /// OpenTelemetry's service instance id.
    pub const INSTANCE: &str = "service.instance.id";
    /// OpenTelemetry's service name.
    pub const SERVICE: &str = "service.name";
}

/// How the body is encoded (`Content-Type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// `application/x-protobuf`: an `ExportLogsServiceRequest` message.
    Protobuf,
    /// `application/json`: its OTLP/JSON mapping (ids as hex, 64-bit integers as strings).
    Json,
}

impl Encoding {
    /// The encoding a `Content-Type` names (parameters ignored), None for anything else.
    pub fn of_content_type(content_type: &str) -> Option<Encoding> {
        let base = content_type.split(';').next().unwrap_or("").trim();
        if base.eq_ignore_ascii_case("application/x-protobuf")
            || base.eq_ignore_ascii_case("application/protobuf")
        {
            Some(Encoding::Protobuf)
        } else if base.eq_ignore_ascii_case("application/json") {
            Some(Encoding::Json)
        } else {
            None
        }
    }
}

/// What one request may hold.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Bytes of body after decompression.
    pub max_body: usize,
    /// Log records.
    pub max_records: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_body: 16 << 20,
            max_records: 100_000,
        }
    }
}

/// One log line as shipped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Record {
    /// The node that wrote it.
    pub node: String,
    /// Its ensemble, when the shipper names it.
    pub ensemble: Option<String>,
    /// The source it belongs to: the key of its checkpoint.
    pub source: String,
    /// The file it was read from, when the shipper says.
    pub path: Option<String>,
    /// The format to parse it with, when the shipper says.
    pub format: Option<String>,
    /// Byte offset of the line in its source.
    pub offset: Option<u64>,
    /// Line number of the line in its source.
    pub line: Option<u64>,
    /// Offset just past the record in its source, when the shipper says.
    pub end: Option<u64>,
    /// `line` counts records, not lines (`log.file.record_number`: the Collector counts a
    /// multi-line entry once).
    pub counts_records: bool,
    /// When it happened, nanoseconds since the epoch (UTC).
    pub time_ns: Option<i64>,
    /// Severity as the shipper wrote it.
    pub severity: Option<String>,
    /// The line.
    pub body: String,
    /// The record's other attributes, as text.
    pub attributes: Vec<(String, String)>,
}

const WHAT: &str = "POST /v1/logs";

fn bad(offset: u64, reason: impl Into<String>) -> Error {
    Error::BadRequest {
        what: WHAT.to_string(),
        offset,
        reason: reason.into(),
    }
}

/// Undoes a `Content-Encoding` (`gzip`, or none), never producing more than `max` bytes.
pub fn decompress(body: &[u8], content_encoding: Option<&str>, max: usize) -> Result<Vec<u8>> {
    let enc = content_encoding.map(str::trim).unwrap_or("");
    if enc.is_empty() || enc.eq_ignore_ascii_case("identity") {
        if body.len() > max {
            return Err(bad(
                max as u64,
                format!("a body of {} bytes, over the limit of {max}", body.len()),
            ));
        }
        return Ok(body.to_vec());
    }
    if !enc.eq_ignore_ascii_case("gzip") {
        return Err(bad(
            0,
            format!("Content-Encoding {enc:?}: only gzip (or none) is read"),
        ));
    }
    let mut out = Vec::new();
    let mut d = flate2::read::MultiGzDecoder::new(body).take(max as u64 + 1);
    d.read_to_end(&mut out).map_err(|e| {
        bad(
            out.len() as u64,
            format!("gzip: {e} (after {} bytes decompressed)", out.len()),
        )
    })?;
    if out.len() > max {
        return Err(bad(
            max as u64,
            format!("decompressed past the limit of {max} bytes"),
        ));
    }
    Ok(out)
}

/// Decodes an export request (already decompressed) into its records.
pub fn decode(body: &[u8], encoding: Encoding, limits: &Limits) -> Result<Vec<Record>> {
    if body.len() > limits.max_body {
        return Err(bad(
            limits.max_body as u64,
            format!(
                "a body of {} bytes, over the limit of {}",
                body.len(),
                limits.max_body
            ),
        ));
    }
    let req = match encoding {
        Encoding::Protobuf => ExportLogsServiceRequest::decode(body)
            .map_err(|e| bad(0, format!("not an OTLP ExportLogsServiceRequest: {e}")))?,
        Encoding::Json => {
            serde_json::from_slice::<ExportLogsServiceRequest>(body).map_err(|e| {
                bad(
                    json_offset(body, e.line(), e.column()),
                    format!("not OTLP/JSON logs: {e}"),
                )
            })?
        }
    };
    records(req, limits)
}

/// Byte offset of a 1-based line and column in `body`.
fn json_offset(body: &[u8], line: usize, column: usize) -> u64 {
    let mut off = 0usize;
    for (i, l) in body.split(|&b| b == b'\n').enumerate() {
        if i + 1 == line {
            return (off + column.saturating_sub(1).min(l.len())) as u64;
        }
        off += l.len() + 1;
    }
    body.len() as u64
}

/// The request's records, flattened, with their resource's attributes applied.
pub fn records(req: ExportLogsServiceRequest, limits: &Limits) -> Result<Vec<Record>> {
    let total: usize = req
        .resource_logs
        .iter()
        .flat_map(|r| &r.scope_logs)
        .map(|s| s.log_records.len())
        .sum();
    if total > limits.max_records {
        return Err(bad(
            0,
            format!(
                "{total} log records in one request, over the limit of {}",
                limits.max_records
            ),
        ));
    }
    let mut out = Vec::with_capacity(total);
    for rl in req.resource_logs {
        let resource: &[KeyValue] = rl
            .resource
            .as_ref()
            .map(|r| r.attributes.as_slice())
            .unwrap_or(&[]);
        for sl in rl.scope_logs {
            for lr in sl.log_records {
                out.push(record(resource, lr));
            }
        }
    }
    Ok(out)
}

fn get<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a AnyValue> {
    attrs
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
}

/// A value as text: strings as they are, scalars printed, bytes as hex, lists and maps as JSON.
pub fn text(v: &AnyValue) -> String {
    match &v.value {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        None => String::new(),
        _ => match json(v) {
            serde_json::Value::String(s) => s,
            other => other.to_string(),
        },
    }
}

fn json(v: &AnyValue) -> serde_json::Value {
    use serde_json::Value as J;
    match &v.value {
        None => J::Null,
        Some(any_value::Value::StringValue(s)) => J::String(s.clone()),
        Some(any_value::Value::BoolValue(b)) => J::Bool(*b),
        Some(any_value::Value::IntValue(i)) => J::from(*i),
        Some(any_value::Value::DoubleValue(d)) => {
            serde_json::Number::from_f64(*d).map_or_else(|| J::String(d.to_string()), J::Number)
        }
        Some(any_value::Value::BytesValue(b)) => {
            J::String(b.iter().map(|x| format!("{x:02x}")).collect())
        }
        // An index into a profile's string table: nothing to look it up in here.
        Some(any_value::Value::StringValueStrindex(i)) => J::from(*i),
        Some(any_value::Value::ArrayValue(a)) => J::Array(a.values.iter().map(json).collect()),
        Some(any_value::Value::KvlistValue(l)) => J::Object(
            l.values
                .iter()
                .map(|kv| (kv.key.clone(), kv.value.as_ref().map_or(J::Null, json)))
                .collect(),
        ),
    }
}

/// An integer attribute: an int, or decimal text (shippers that only send strings).
fn integer(v: &AnyValue) -> Option<u64> {
    match &v.value {
        Some(any_value::Value::IntValue(i)) => u64::try_from(*i).ok(),
        Some(any_value::Value::StringValue(s)) => s.trim().parse().ok(),
        _ => None,
    }
}

fn nonempty(s: String) -> Option<String> {
    (!s.trim().is_empty()).then_some(s)
}

fn record(resource: &[KeyValue], lr: opentelemetry_proto::tonic::logs::v1::LogRecord) -> Record {
    let attrs = &lr.attributes;
    // The record's own attribute first, then its resource's.
    let either = |key: &str| get(attrs, key).or_else(|| get(resource, key));
    let named = |key: &str| either(key).map(text).and_then(nonempty);
    let node = get(resource, attr::INSTANCE)
        .map(text)
        .and_then(nonempty)
        .or_else(|| named(attr::HOST))
        .unwrap_or_else(|| "unknown".to_string());
    let path = named(attr::FILE_PATH);
    let source = named(attr::SOURCE).unwrap_or_else(|| match &path {
        Some(p) if p.starts_with('/') => format!("otlp://{node}{p}"),
        Some(p) => format!("otlp://{node}/{p}"),
        None => format!(
            "otlp://{node}/{}",
            named(attr::SERVICE).unwrap_or_else(|| "logs".to_string())
        ),
    });
    let offset = either(attr::OFFSET)
        .or_else(|| either(attr::FILE_OFFSET))
        .and_then(integer);
    let own_line = either(attr::LINE).and_then(integer);
    let record_number = either(attr::FILE_RECORD_NUMBER).and_then(integer);
    let line = own_line.or(record_number);
    let time = if lr.time_unix_nano != 0 {
        lr.time_unix_nano
    } else {
        lr.observed_time_unix_nano
    };
    let own = [
        attr::SOURCE,
        attr::OFFSET,
        attr::LINE,
        attr::END,
        attr::FORMAT,
        attr::ENSEMBLE,
        attr::FILE_PATH,
        attr::FILE_OFFSET,
        attr::FILE_RECORD_NUMBER,
    ];
    let attributes = attrs
        .iter()
        .filter(|kv| !own.contains(&kv.key.as_str()))
        .map(|kv| {
            (
                kv.key.clone(),
                kv.value.as_ref().map(text).unwrap_or_default(),
            )
        })
        .collect();
    Record {
        ensemble: named(attr::ENSEMBLE),
        format: named(attr::FORMAT),
        source,
        path,
        offset,
        line,
        end: either(attr::END).and_then(integer),
        counts_records: own_line.is_none() && record_number.is_some(),
        time_ns: (time != 0).then(|| i64::try_from(time).ok()).flatten(),
        severity: nonempty(lr.severity_text.clone()),
        body: lr.body.as_ref().map(text).unwrap_or_default(),
        attributes,
        node,
    }
}

/// A source whose lines are pushed to the service (`POST /v1/logs`) rather than read by it.
///
/// A request's records of one source are taken as whole entries: its lines are assembled into
/// events as a followed file's are (a stack trace shipped line by line, or as one multi-line
/// record, is one event), and the entry last in the request is ended with it. So what a `200`
/// acknowledges is exactly what is committed, and no entry waits in memory for the next
/// request: a shipper cuts its requests between entries (`zklens agent` does; Vector and the
/// Collector do with their multiline settings), else an entry cut in two is indexed as two.
/// What was sent before is recognised and dropped:
///
/// - **by offset** when the records carry one (`zklens agent`, or a shipper configured to send
///   `log.file.offset`): a record starting before the next byte expected is a resend;
/// - **else by line number** (`log.file.record_number`): a line at or before the last one
///   received is a resend;
/// - **else not at all**: such a shipper is at-least-once, and so is what is indexed from it.
///
/// A record at offset 0 (or line 1) whose first line is not the first line received before
/// starts the source again: the file was rotated or truncated (its fingerprint, as a followed
/// file's, is the FNV-1a of its first line). The entry being assembled is ended and the new
/// content is indexed from its start. A record past the next byte expected is indexed, and the
/// bytes skipped are reported.
#[derive(Debug)]
pub struct Pushed {
    asm: Assembler,
    /// Where the last batch handed out left the source.
    last: Checkpoint,
    /// Offset of the next byte expected.
    next_offset: u64,
    /// Number of the last line received.
    next_line: u64,
    /// Fingerprint of the first line received (0 bytes: none yet).
    fp: u64,
    fp_len: u64,
    max_line: usize,
}

/// What one push did.
#[derive(Debug, Default)]
pub struct Pushing {
    /// The batch to send the writer (None: nothing moved).
    pub batch: Option<Batch>,
    /// Records taken.
    pub accepted: u64,
    /// Records dropped as resends of what was received before.
    pub duplicates: u64,
}

impl Pushed {
    /// A pushed source resuming at `resume` (its committed checkpoint), else from nothing.
    pub fn new(spec: FollowSpec, registry: Arc<Registry>, resume: Option<Checkpoint>) -> Pushed {
        let max_line = spec.max_line;
        let key = spec.key.clone();
        let asm = Assembler::new(spec, registry, key.clone(), resume.as_ref());
        let last = resume.unwrap_or_else(|| Checkpoint::start(key));
        Pushed {
            asm,
            next_offset: last.offset,
            next_line: last.line,
            fp: last.fp,
            fp_len: last.fp_len,
            last,
            max_line,
        }
    }

    /// The source's key.
    pub fn key(&self) -> &str {
        &self.asm.spec.key
    }

    /// Where the last batch handed out left the source.
    pub fn checkpoint(&self) -> &Checkpoint {
        &self.last
    }

    /// Where `records` (this source's, in the order sent) would leave a gap: the offset of the
    /// next byte expected and the offset the first new record starts at, when that is later
    /// (and not 0, which starts the source again).
    pub fn gap<'a>(&self, records: impl IntoIterator<Item = &'a Record>) -> Option<(u64, u64)> {
        let first = records.into_iter().find_map(|r| r.offset)?;
        (first > self.next_offset).then_some((self.next_offset, first))
    }

    /// Takes `records` (all of this source, in the order sent): drops resends, assembles the
    /// rest into events, and returns the batch that moves the checkpoint over them.
    pub fn push<'a>(&mut self, records: impl IntoIterator<Item = &'a Record>) -> Pushing {
        let mut out = Pushing::default();
        let mut lines: Vec<TailLine> = Vec::new();
        let mut notices = Vec::new();
        let mut bytes = 0u64;
        for r in records {
            let text = r.body.strip_suffix('\n').unwrap_or(&r.body);
            let first = text.split('\n').next().unwrap_or_default().as_bytes();
            let mut file_start = false;
            let at_start = r.offset == Some(0) || (r.offset.is_none() && r.line == Some(1));
            if at_start {
                let fp = fnv1a(first);
                let len = first.len() as u64;
                let nothing_yet = self.next_offset == 0 && self.next_line == 0;
                if self.fp_len == 0 && self.fp == 0 || nothing_yet {
                    (self.fp, self.fp_len) = (fp, len);
                } else if (fp, len) != (self.fp, self.fp_len) {
                    notices.push(Notice {
                        offset: 0,
                        message: format!(
                            "the source starts again with another first line (rotated or truncated at offset {}): read from its start",
                            self.next_offset
                        ),
                    });
                    (self.fp, self.fp_len) = (fp, len);
                    self.next_offset = 0;
                    self.next_line = 0;
                    file_start = true;
                }
            }
            let resent = match (r.offset, r.line) {
                (Some(o), _) => o < self.next_offset,
                (None, Some(l)) => l <= self.next_line,
                (None, None) => false,
            };
            if resent {
                out.duplicates += 1;
                continue;
            }
            if let Some(o) = r.offset.filter(|&o| o > self.next_offset) {
                notices.push(Notice {
                    offset: self.next_offset,
                    message: format!(
                        "{} bytes were never received (offsets {}..{}): the shipper skipped them",
                        o - self.next_offset,
                        self.next_offset,
                        o
                    ),
                });
            }
            let mut offset = r.offset.unwrap_or(self.next_offset);
            let mut number = r.line.unwrap_or(self.next_line + 1);
            for piece in text.split('\n') {
                let b = piece.as_bytes();
                lines.push(TailLine {
                    offset,
                    number,
                    bytes: b[..b.len().min(self.max_line)].to_vec(),
                    file_start: std::mem::take(&mut file_start),
                });
                offset += b.len() as u64 + 1;
                bytes += b.len() as u64 + 1;
                number += 1;
            }
            // The shipper's end, when it says (a cut or re-encoded line is shorter or longer
            // than the bytes it took in the file), else what the body took.
            self.next_offset = match (r.offset, r.end) {
                (Some(o), Some(e)) if e > o => e,
                _ => offset,
            };
            self.next_line = match r.line {
                Some(l) if r.counts_records => l,
                _ => number - 1,
            };
            out.accepted += 1;
        }
        let mut events = self.asm.push(&lines);
        events.extend(self.asm.finish());
        out.batch = self.moved(events, bytes, notices);
        out
    }

    fn moved(&mut self, events: Vec<Event>, bytes: u64, notices: Vec<Notice>) -> Option<Batch> {
        let at = Checkpoint {
            path: self.asm.spec.key.clone(),
            fp: self.fp,
            fp_len: self.fp_len,
            offset: self.next_offset,
            line: self.next_line,
            ..Checkpoint::default()
        };
        let cp = self
            .asm
            .checkpoint(at, self.last.events + events.len() as u64);
        if events.is_empty() && cp.same_position(&self.last) {
            return (!notices.is_empty()).then(|| Batch {
                notices,
                ..Batch::default()
            });
        }
        let delta = CheckpointDelta::new(Some(self.last.clone()), cp.clone());
        self.last = cp;
        Some(Batch {
            events,
            delta: Some(delta),
            bytes,
            notices,
            ..Batch::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::KeyValueList;
    use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
    use opentelemetry_proto::tonic::resource::v1::Resource;

    fn s(v: &str) -> Option<AnyValue> {
        Some(AnyValue {
            value: Some(any_value::Value::StringValue(v.to_string())),
        })
    }

    fn kv(k: &str, v: Option<AnyValue>) -> KeyValue {
        KeyValue {
            key: k.to_string(),
            value: v,
            ..Default::default()
        }
    }

    fn int(i: i64) -> Option<AnyValue> {
        Some(AnyValue {
            value: Some(any_value::Value::IntValue(i)),
        })
    }

    fn request(resource: Vec<KeyValue>, records: Vec<LogRecord>) -> ExportLogsServiceRequest {
        ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                resource: Some(Resource {
                    attributes: resource,
                    ..Default::default()
                }),
                scope_logs: vec![ScopeLogs {
                    log_records: records,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
    }

    fn agent_line(offset: i64, line: i64, body: &str) -> LogRecord {
        LogRecord {
            observed_time_unix_nano: 1_764_000_000_000_000_000,
            body: s(body),
            attributes: vec![
                kv(attr::SOURCE, s("file:///var/log/zookeeper/zookeeper.log")),
                kv(attr::OFFSET, int(offset)),
                kv(attr::LINE, int(line)),
                kv(attr::FORMAT, s("zookeeper-log4j")),
            ],
            ..Default::default()
        }
    }

    #[test]
    fn protobuf_from_the_agent_keeps_source_offsets_and_node() {
        let req = request(
            vec![
                kv(attr::INSTANCE, s("zk1")),
                kv(attr::HOST, s("host-a")),
                kv(attr::ENSEMBLE, s("east")),
            ],
            vec![agent_line(0, 1, "first"), agent_line(6, 2, "second")],
        );
        let got = decode(&req.encode_to_vec(), Encoding::Protobuf, &Limits::default()).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[1].node, "zk1");
        assert_eq!(got[1].ensemble.as_deref(), Some("east"));
        assert_eq!(got[1].source, "file:///var/log/zookeeper/zookeeper.log");
        assert_eq!((got[1].offset, got[1].line), (Some(6), Some(2)));
        assert_eq!(got[1].format.as_deref(), Some("zookeeper-log4j"));
        assert_eq!(got[1].time_ns, Some(1_764_000_000_000_000_000));
        assert_eq!(got[1].body, "second");
        assert!(got[1].attributes.is_empty(), "{:?}", got[1].attributes);
    }

    #[test]
    fn json_as_the_collector_sends_it() {
        // OTLP/JSON: camelCase, 64-bit integers as strings, ids as hex.
        let body = br#"{"resourceLogs":[{"resource":{"attributes":[
            {"key":"host.name","value":{"stringValue":"web-3"}},
            {"key":"service.name","value":{"stringValue":"calc"}}]},
          "scopeLogs":[{"scope":{},"logRecords":[
            {"timeUnixNano":"1764000000123456789","severityText":"WARN",
             "traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174",
             "body":{"stringValue":"became PRIMARY"},
             "attributes":[{"key":"log.file.path","value":{"stringValue":"/var/log/calc.log"}},
                           {"key":"log.file.offset","value":{"intValue":"4096"}},
                           {"key":"thread","value":{"stringValue":"main"}}]}]}]}]}"#;
        let got = decode(body, Encoding::Json, &Limits::default()).unwrap();
        assert_eq!(got.len(), 1);
        let r = &got[0];
        assert_eq!(r.node, "web-3");
        assert_eq!(r.source, "otlp://web-3/var/log/calc.log");
        assert_eq!(r.path.as_deref(), Some("/var/log/calc.log"));
        assert_eq!(r.offset, Some(4096));
        assert_eq!(r.time_ns, Some(1_764_000_000_123_456_789));
        assert_eq!(r.severity.as_deref(), Some("WARN"));
        assert_eq!(r.body, "became PRIMARY");
        assert_eq!(r.attributes, vec![("thread".into(), "main".into())]);
    }

    #[test]
    fn a_record_without_a_file_is_keyed_by_its_service() {
        let req = request(
            vec![kv(attr::HOST, s("h1")), kv(attr::SERVICE, s("ledger"))],
            vec![LogRecord {
                body: Some(AnyValue {
                    value: Some(any_value::Value::KvlistValue(KeyValueList {
                        values: vec![kv("msg", s("x")), kv("n", int(3))],
                    })),
                }),
                ..Default::default()
            }],
        );
        let got = decode(&req.encode_to_vec(), Encoding::Protobuf, &Limits::default()).unwrap();
        assert_eq!(got[0].source, "otlp://h1/ledger");
        assert_eq!(got[0].time_ns, None);
        assert_eq!(got[0].offset, None);
        assert_eq!(got[0].body, r#"{"msg":"x","n":3}"#);
    }

    #[test]
    fn hostile_bodies_are_refused_with_where_and_why() {
        let limits = Limits {
            max_body: 1 << 16,
            max_records: 3,
        };
        // Not protobuf.
        let e = decode(b"\xff\xff\xff\xff", Encoding::Protobuf, &limits).unwrap_err();
        assert!(matches!(e, Error::BadRequest { .. }), "{e}");
        assert_eq!(e.http_status(), 400);
        // JSON broken on its second line: the offset points there.
        let body = b"{\"resourceLogs\":\n  [oops]}";
        match decode(body, Encoding::Json, &limits).unwrap_err() {
            Error::BadRequest { offset, .. } => assert!((17..body.len() as u64).contains(&offset)),
            e => panic!("{e}"),
        }
        // Too many records.
        let req = request(vec![], (0..4).map(|i| agent_line(i, i + 1, "l")).collect());
        let e = decode(&req.encode_to_vec(), Encoding::Protobuf, &limits).unwrap_err();
        assert!(e.to_string().contains("4 log records"), "{e}");
        // A gzip bomb stops at the limit.
        let mut z = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        std::io::Write::write_all(&mut z, &vec![0u8; 1 << 20]).unwrap();
        let bomb = z.finish().unwrap();
        let e = decompress(&bomb, Some("gzip"), 1 << 16).unwrap_err();
        assert!(e.to_string().contains("limit"), "{e}");
        // Truncated gzip names how far it got.
        let e = decompress(&bomb[..bomb.len() / 2], Some("gzip"), 1 << 24).unwrap_err();
        assert!(e.to_string().contains("gzip"), "{e}");
        assert!(decompress(b"x", Some("br"), 10).is_err());
        // Deep nesting in JSON is refused, not a stack overflow.
        let deep = format!(
            "{{\"resourceLogs\":[{{\"scopeLogs\":[{{\"logRecords\":[{{\"body\":{}{}}}]}}]}}]}}",
            "{\"arrayValue\":{\"values\":[".repeat(5000),
            "]}}".repeat(5000)
        );
        assert!(decode(deep.as_bytes(), Encoding::Json, &Limits::default()).is_err());
    }

    #[test]
    fn content_types() {
        assert_eq!(
            Encoding::of_content_type("application/x-protobuf"),
            Some(Encoding::Protobuf)
        );
        assert_eq!(
            Encoding::of_content_type("Application/JSON; charset=utf-8"),
            Some(Encoding::Json)
        );
        assert_eq!(Encoding::of_content_type("text/plain"), None);
    }
    /// The real log of a ZooKeeper server (`samples/incident-1`, stack traces included) as
    /// one record per line, the way `zklens agent` and line shippers send it.
    fn zk_lines() -> Vec<Record> {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/samples/incident-1/zk1/logs/zookeeper.log"
        );
        let text = std::fs::read_to_string(path).expect("sample log");
        let mut out = Vec::new();
        let mut offset = 0u64;
        for (i, l) in text.split_inclusive('\n').enumerate() {
            out.push(Record {
                node: "zk1".into(),
                source: "agent://host-a/var/log/zookeeper.log".into(),
                offset: Some(offset),
                line: Some(i as u64 + 1),
                body: l.trim_end_matches('\n').to_string(),
                ..Record::default()
            });
            offset += l.len() as u64;
        }
        out
    }

    fn pushed(resume: Option<Checkpoint>) -> Pushed {
        let registry = Arc::new(Registry::load(&[] as &[&std::path::Path]).expect("formats"));
        let spec = FollowSpec {
            key: "agent://host-a/var/log/zookeeper.log".into(),
            node: "zk1".into(),
            ensemble: crate::event::default_ensemble(),
            format: None,
            tz: crate::time::Tz::Utc,
            flush: std::time::Duration::from_secs(3600),
            max_line: 1 << 20,
        };
        Pushed::new(spec, registry, resume)
    }

    /// (offset, line, message) of each event, checking that the deltas chain.
    fn take(b: Option<Batch>, into: &mut Vec<(u64, u64, String)>, last: &mut Option<Checkpoint>) {
        if let Some(b) = b {
            if let Some(d) = b.delta {
                assert_eq!(
                    d.from.as_ref().map(|c| c.offset),
                    last.as_ref().map(|c| c.offset)
                );
                *last = Some(d.to);
            }
            into.extend(b.events.into_iter().map(|e| (e.offset, e.line, e.message)));
        }
    }

    fn whole() -> Vec<(u64, u64, String)> {
        let recs = zk_lines();
        let mut p = pushed(None);
        let (mut got, mut last) = (Vec::new(), Some(Checkpoint::start(p.key())));
        take(p.push(&recs).batch, &mut got, &mut last);
        got
    }

    /// `recs` cut into requests of about `n` records, between entries (at lines that start
    /// with a date), as a shipper with multiline settings cuts them.
    fn requests(recs: &[Record], n: usize) -> Vec<&[Record]> {
        let mut out = Vec::new();
        let mut start = 0;
        for i in 1..recs.len() {
            let starts_entry = recs[i].body.starts_with("20");
            if i - start >= n && starts_entry {
                out.push(&recs[start..i]);
                start = i;
            }
        }
        out.push(&recs[start..]);
        out
    }

    #[test]
    fn stack_traces_sent_line_by_line_are_one_event_each() {
        let recs = zk_lines();
        let got = whole();
        // Fewer events than lines: the stack traces' lines joined their entries.
        assert!(
            got.len() < recs.len() - 10,
            "{} events of {} lines",
            got.len(),
            recs.len()
        );
        let trace = got
            .iter()
            .find(|e| {
                e.2.contains("java.net.ConnectException: Connection refused")
            })
            .expect("the stack trace's entry");
        assert!(
            trace.2.contains("at java.base/sun.nio.ch.Net.pollConnect"),
            "{}",
            trace.2
        );
    }

    #[test]
    fn resends_are_dropped_and_chunks_give_what_one_push_gives() {
        let recs = zk_lines();
        let want = whole();
        let mut p = pushed(None);
        let (mut got, mut last) = (Vec::new(), Some(Checkpoint::start(p.key())));
        let mut dups = 0;
        let chunks = requests(&recs, 7);
        assert!(chunks.len() > 50);
        for chunk in chunks {
            let first = p.push(chunk);
            assert_eq!(first.accepted, chunk.len() as u64);
            take(first.batch, &mut got, &mut last);
            // At-least-once: the same chunk again, as after a lost answer.
            let again = p.push(chunk);
            assert_eq!(again.accepted, 0);
            dups += again.duplicates;
            take(again.batch, &mut got, &mut last);
        }
        assert_eq!(dups, recs.len() as u64);
        assert_eq!(got, want);
    }

    #[test]
    fn a_restart_from_the_checkpoint_loses_and_repeats_nothing() {
        let recs = zk_lines();
        let want = whole();
        let chunks = requests(&recs, 40);
        let mut p = pushed(None);
        let (mut got, mut last) = (Vec::new(), Some(Checkpoint::start(p.key())));
        for c in &chunks[..3] {
            take(p.push(*c).batch, &mut got, &mut last);
        }
        let cp = last.clone().expect("a checkpoint");
        let sent: usize = chunks[..3].iter().map(|c| c.len()).sum();
        assert_eq!(
            Some(cp.offset),
            recs[sent].offset,
            "the checkpoint is what was sent"
        );
        // The service restarts from `cp`; the shipper resends everything from offset 0.
        let mut q = pushed(Some(cp));
        let again = q.push(&recs);
        assert_eq!(again.duplicates, sent as u64);
        take(again.batch, &mut got, &mut last);
        assert_eq!(got, want);
    }

    #[test]
    fn a_new_first_line_at_offset_zero_is_a_rotation() {
        let recs = zk_lines();
        let mut p = pushed(None);
        let (mut got, mut last) = (Vec::new(), Some(Checkpoint::start(p.key())));
        take(p.push(&recs[..50]).batch, &mut got, &mut last);
        let before = got.len();
        let rotated: Vec<Record> = recs[200..230]
            .iter()
            .scan(0u64, |off, r| {
                let mut r = r.clone();
                r.offset = Some(*off);
                r.line = None;
                *off += r.body.len() as u64 + 1;
                Some(r)
            })
            .collect();
        let pushing = p.push(&rotated);
        assert_eq!(pushing.accepted, 30);
        let b = pushing.batch.expect("a batch");
        assert!(
            b.notices.iter().any(|n| n.message.contains("rotated")),
            "{:?}",
            b.notices
        );
        take(Some(b), &mut got, &mut last);
        let alone = pushed(None)
            .push(&rotated)
            .batch
            .expect("a batch")
            .events
            .len();
        assert_eq!(
            got.len() - before,
            alone,
            "the new file's entries, all of them"
        );
        assert!(
            got[before..].iter().any(|e| e.0 == 0),
            "read from the new file's start"
        );
    }

    #[test]
    fn line_numbers_dedupe_when_no_offset_is_sent() {
        let mut recs = zk_lines();
        for r in &mut recs {
            r.offset = None;
        }
        let mut p = pushed(None);
        assert_eq!(p.push(&recs[..40]).accepted, 40);
        let again = p.push(&recs[30..60]);
        assert_eq!((again.accepted, again.duplicates), (20, 10));
    }

    /// The Collector's `log.file.record_number` with multiline: one number per entry, however
    /// many lines it has. Entries after a multi-line one are not taken for resends.
    #[test]
    fn record_numbers_count_entries_not_lines() {
        // Entries as the Collector sends them with multiline: a stack trace is one record.
        let mut entries: Vec<Record> = Vec::new();
        for r in zk_lines() {
            let starts = r.body.as_bytes().first().is_some_and(u8::is_ascii_digit);
            match entries.last_mut() {
                Some(e) if !starts => {
                    e.body.push('\n');
                    e.body.push_str(&r.body);
                }
                _ => entries.push(Record { offset: None, ..r }),
            }
        }
        for (i, e) in entries.iter_mut().enumerate() {
            e.counts_records = true;
            e.line = Some(i as u64 + 1);
        }
        assert!(
            entries.iter().take(200).any(|e| e.body.contains('\n')),
            "the sample has multi-line entries early on"
        );
        let mut p = pushed(None);
        assert_eq!(p.push(&entries[..200]).accepted, 200);
        let again = p.push(&entries[150..260]);
        assert_eq!((again.accepted, again.duplicates), (60, 50));
    }
}
