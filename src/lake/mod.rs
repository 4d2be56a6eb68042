//! The event lake: zklens's events as Arrow record batches, written as Parquet (or Arrow IPC, or
//! JSON lines) in a Hive-partitioned directory that Spark, Trino, DuckDB and DataFusion read.
//!
//! One schema, [`SCHEMA_ID`] (`zklens.event.v1`), chosen for what other engines read without
//! surprises:
//! - `ts` is a UTC timestamp in microseconds (Spark rejects nanoseconds);
//! - session ids and zxids are `Int64`, as ZooKeeper keeps them (a Java `long`: a session id
//!   whose top byte is 0x80 or more is negative, as Java prints it); Spark reads unsigned 64-bit
//!   integers as decimals;
//! - the few-valued strings (node, source, kind, level, logger, thread) are dictionary-encoded.
//!
//! In a lake directory the partition columns (`ensemble`, `date`) live in the paths
//! (`ensemble=NAME/date=YYYY-MM-DD/`), not in the files: Spark refuses a column that is both.
//! [`file_schema`] is the schema of the files, [`event_schema`] the whole event.

mod export;
mod read;

pub use export::{ExportFormat, ExportReport, Exporter};
pub use read::{check_file, lake_files, read_file, read_lake};

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use arrow_array::builder::{
    Int32Builder, Int64Builder, MapBuilder, MapFieldNames, StringBuilder, StringDictionaryBuilder,
    TimestampMicrosecondBuilder,
};
use arrow_array::types::Int32Type;
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};

use crate::error::{Error, Result};
use crate::event::Event;

/// The schema's name and version, in every file's metadata (key `zklens.schema`).
pub const SCHEMA_ID: &str = "zklens.event.v1";

/// The metadata key holding [`SCHEMA_ID`].
pub const SCHEMA_KEY: &str = "zklens.schema";

/// The Hive partition value for events without a time (Hive's and Spark's own spelling).
pub const NO_DATE: &str = "__HIVE_DEFAULT_PARTITION__";

fn dict() -> DataType {
    DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8))
}

fn ts_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

/// The field names of `attributes`: the Arrow specification's canonical ones (`entries`,
/// `key`, `value`), which pyarrow prints as a plain `map<string, string>`.
fn map_names() -> MapFieldNames {
    MapFieldNames {
        entry: "entries".into(),
        key: "key".into(),
        value: "value".into(),
    }
}

/// The map type of `attributes`.
fn attributes_type() -> DataType {
    let n = map_names();
    let entries = Field::new(
        n.entry,
        DataType::Struct(Fields::from(vec![
            Field::new(n.key, DataType::Utf8, false),
            Field::new(n.value, DataType::Utf8, true),
        ])),
        false,
    );
    DataType::Map(Arc::new(entries), false)
}

/// The columns after the partition columns, in file order.
fn file_fields() -> Vec<Field> {
    vec![
        Field::new("ts", ts_type(), true),
        Field::new("node", dict(), false),
        Field::new("source", dict(), true),
        Field::new("kind", dict(), false),
        Field::new("level", dict(), true),
        Field::new("logger", dict(), true),
        Field::new("thread", dict(), true),
        Field::new("session", DataType::Int64, true),
        Field::new("zxid", DataType::Int64, true),
        Field::new("epoch", DataType::Int32, true),
        Field::new("server", DataType::Int32, true),
        Field::new("leader", DataType::Int32, true),
        Field::new("myid", DataType::Int32, true),
        Field::new("path", DataType::Utf8, true),
        Field::new("peer", DataType::Utf8, true),
        Field::new("state", DataType::Utf8, true),
        Field::new("message", DataType::Utf8, false),
        Field::new("attributes", attributes_type(), false),
        Field::new("src_path", DataType::Utf8, false),
        Field::new("src_offset", DataType::Int64, false),
        Field::new("line", DataType::Int64, false),
    ]
}

fn with_id(fields: Vec<Field>) -> SchemaRef {
    let meta = [(SCHEMA_KEY.to_string(), SCHEMA_ID.to_string())].into();
    Arc::new(Schema::new(fields).with_metadata(meta))
}

/// The schema of a lake file: every event column but the partition columns.
pub fn file_schema() -> SchemaRef {
    static S: OnceLock<SchemaRef> = OnceLock::new();
    S.get_or_init(|| with_id(file_fields())).clone()
}

/// The whole event: `ensemble` first, then the columns of [`file_schema`] (a lake's `date`
/// partition is derived from `ts`).
pub fn event_schema() -> SchemaRef {
    static S: OnceLock<SchemaRef> = OnceLock::new();
    S.get_or_init(|| {
        let mut f = vec![Field::new("ensemble", dict(), false)];
        f.extend(file_fields());
        with_id(f)
    })
    .clone()
}

/// Index of `name` among the file schema's leaf columns (what Parquet's `sorting_columns`
/// counts): the map column has two leaves, and every sort column comes before it.
pub(crate) fn leaf_index(name: &str) -> Option<usize> {
    file_fields().iter().position(|f| f.name() == name)
}

/// The UTC date (`YYYY-MM-DD`) of a time in nanoseconds, or [`NO_DATE`].
pub fn date_of(ts: Option<i64>) -> String {
    match ts {
        Some(t) => {
            let c = crate::time::civil_from_nanos(t);
            format!("{:04}-{:02}-{:02}", c.year, c.month, c.day)
        }
        None => NO_DATE.to_string(),
    }
}

/// An id kept as Java keeps it: the same 64 bits, signed.
fn java_long(v: u64) -> i64 {
    v as i64
}

/// A small number as Int32; a value past its range goes to `attributes` under `key` instead
/// (nothing is dropped).
fn int32(
    v: Option<u64>,
    key: &'static str,
    attrs: &mut BTreeMap<&'static str, String>,
) -> Option<i32> {
    let v = v?;
    match i32::try_from(v) {
        Ok(x) => Some(x),
        Err(_) => {
            attrs.insert(key, v.to_string());
            None
        }
    }
}

/// Accumulates events into one record batch of [`file_schema`] (or [`event_schema`], with the
/// ensemble).
pub struct BatchBuilder {
    ensemble: Option<StringDictionaryBuilder<Int32Type>>,
    ts: TimestampMicrosecondBuilder,
    node: StringDictionaryBuilder<Int32Type>,
    source: StringDictionaryBuilder<Int32Type>,
    kind: StringDictionaryBuilder<Int32Type>,
    level: StringDictionaryBuilder<Int32Type>,
    logger: StringDictionaryBuilder<Int32Type>,
    thread: StringDictionaryBuilder<Int32Type>,
    session: Int64Builder,
    zxid: Int64Builder,
    epoch: Int32Builder,
    server: Int32Builder,
    leader: Int32Builder,
    myid: Int32Builder,
    path: StringBuilder,
    peer: StringBuilder,
    state: StringBuilder,
    message: StringBuilder,
    attributes: MapBuilder<StringBuilder, StringBuilder>,
    src_path: StringBuilder,
    src_offset: Int64Builder,
    line: Int64Builder,
    rows: usize,
}

impl BatchBuilder {
    /// A builder of lake-file batches; `with_ensemble`, of whole-event batches carrying each
    /// event's ensemble.
    pub fn new(with_ensemble: bool) -> BatchBuilder {
        BatchBuilder {
            ensemble: with_ensemble.then(StringDictionaryBuilder::new),
            ts: TimestampMicrosecondBuilder::new().with_timezone("UTC"),
            node: StringDictionaryBuilder::new(),
            source: StringDictionaryBuilder::new(),
            kind: StringDictionaryBuilder::new(),
            level: StringDictionaryBuilder::new(),
            logger: StringDictionaryBuilder::new(),
            thread: StringDictionaryBuilder::new(),
            session: Int64Builder::new(),
            zxid: Int64Builder::new(),
            epoch: Int32Builder::new(),
            server: Int32Builder::new(),
            leader: Int32Builder::new(),
            myid: Int32Builder::new(),
            path: StringBuilder::new(),
            peer: StringBuilder::new(),
            state: StringBuilder::new(),
            message: StringBuilder::new(),
            attributes: MapBuilder::new(
                Some(map_names()),
                StringBuilder::new(),
                StringBuilder::new(),
            ),
            src_path: StringBuilder::new(),
            src_offset: Int64Builder::new(),
            line: Int64Builder::new(),
            rows: 0,
        }
    }

    /// Rows appended since the last [`BatchBuilder::finish`].
    pub fn len(&self) -> usize {
        self.rows
    }

    /// No rows appended since the last [`BatchBuilder::finish`].
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Appends one event; `format` is the name of the format its source was read with.
    pub fn push(&mut self, e: &Event, format: Option<&str>) -> Result<()> {
        let fail = |c: &str, err: arrow_schema::ArrowError| {
            Error::Internal(format!("lake: cannot append to column {c}: {err}"))
        };
        if let Some(b) = &mut self.ensemble {
            b.append(&*e.ensemble).map_err(|x| fail("ensemble", x))?;
        }
        self.ts.append_option(e.ts.map(|t| t.div_euclid(1000)));
        self.node.append(&*e.node).map_err(|x| fail("node", x))?;
        self.source.append_option(format.filter(|f| !f.is_empty()));
        self.kind.append(&*e.kind).map_err(|x| fail("kind", x))?;
        self.level.append_option(e.level.map(|l| l.as_str()));
        self.logger.append_option(e.logger.as_deref());
        self.thread.append_option(e.thread.as_deref());
        let a = &e.attrs;
        self.session.append_option(a.session.map(java_long));
        self.zxid.append_option(a.zxid.map(java_long));
        let mut extra: BTreeMap<&'static str, String> = BTreeMap::new();
        self.epoch
            .append_option(int32(a.epoch, "epoch", &mut extra));
        self.server
            .append_option(int32(a.server, "server", &mut extra));
        self.leader
            .append_option(int32(a.leader, "leader", &mut extra));
        self.myid.append_option(int32(e.myid, "myid", &mut extra));
        self.path.append_option(a.path.as_deref());
        self.peer.append_option(a.peer.as_deref());
        self.state.append_option(a.state.as_deref());
        self.message.append_value(&e.message);
        if let Some(d) = a.duration_ms {
            extra.insert("duration_ms", d.to_string());
        }
        if let Some(t) = a.timeout_ms {
            extra.insert("timeout_ms", t.to_string());
        }
        // znode paths cannot hold a newline (ZooKeeper refuses control characters in them).
        if !e.paths.is_empty() {
            extra.insert("paths", e.paths.join("\n"));
        }
        if !e.replicas.is_empty() {
            let r: Vec<&str> = e.replicas.iter().map(|r| &**r).collect();
            extra.insert("replicas", r.join("\n"));
        }
        for (k, v) in extra {
            self.attributes.keys().append_value(k);
            self.attributes.values().append_value(v);
        }
        self.attributes
            .append(true)
            .map_err(|x| fail("attributes", x))?;
        self.src_path.append_value(&*e.source);
        self.src_offset
            .append_value(e.offset.min(i64::MAX as u64) as i64);
        self.line.append_value(e.line.min(i64::MAX as u64) as i64);
        self.rows += 1;
        Ok(())
    }

    /// The rows appended so far as one batch (the builder starts over, empty).
    pub fn finish(&mut self) -> Result<RecordBatch> {
        self.build(false)
    }

    /// [`BatchBuilder::finish`], keeping the dictionaries' values: the next batch's
    /// dictionaries extend this one's, as an Arrow IPC file's delta dictionaries must.
    pub fn finish_keeping(&mut self) -> Result<RecordBatch> {
        self.build(true)
    }

    fn build(&mut self, keep: bool) -> Result<RecordBatch> {
        let d = |b: &mut StringDictionaryBuilder<Int32Type>| -> ArrayRef {
            Arc::new(if keep {
                b.finish_preserve_values()
            } else {
                b.finish()
            })
        };
        let mut cols: Vec<ArrayRef> = Vec::with_capacity(22);
        let schema = match &mut self.ensemble {
            Some(b) => {
                cols.push(d(b));
                event_schema()
            }
            None => file_schema(),
        };
        cols.push(Arc::new(self.ts.finish()));
        cols.push(d(&mut self.node));
        cols.push(d(&mut self.source));
        cols.push(d(&mut self.kind));
        cols.push(d(&mut self.level));
        cols.push(d(&mut self.logger));
        cols.push(d(&mut self.thread));
        cols.push(Arc::new(self.session.finish()));
        cols.push(Arc::new(self.zxid.finish()));
        cols.push(Arc::new(self.epoch.finish()));
        cols.push(Arc::new(self.server.finish()));
        cols.push(Arc::new(self.leader.finish()));
        cols.push(Arc::new(self.myid.finish()));
        cols.push(Arc::new(self.path.finish()));
        cols.push(Arc::new(self.peer.finish()));
        cols.push(Arc::new(self.state.finish()));
        cols.push(Arc::new(self.message.finish()));
        cols.push(Arc::new(self.attributes.finish()));
        cols.push(Arc::new(self.src_path.finish()));
        cols.push(Arc::new(self.src_offset.finish()));
        cols.push(Arc::new(self.line.finish()));
        self.rows = 0;
        RecordBatch::try_new(schema, cols)
            .map_err(|e| Error::Internal(format!("lake: cannot assemble a batch: {e}")))
    }
}

#[cfg(test)]
mod tests;
