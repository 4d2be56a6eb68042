//! Writing events into a lake directory: one file per (ensemble, date, node), rows in time
//! order, published atomically.
//!
//! Layout: `OUT/ensemble=NAME/date=YYYY-MM-DD/part-NODE-KEY.EXT`. `KEY` names the export (a
//! hash of what was asked), so running the same export again replaces its own files and
//! leaves other exports' files alone. Each file is written under a dot-name (`.part-….tmp`,
//! which Spark, DuckDB and pyarrow skip) and renamed into place once complete and synced: a
//! reader sees a whole file or none.
//!
//! Events must come in time order (as a search returns them): a date's files are finished as
//! soon as an event of a later date arrives, so at most the files of one or two days are open.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_ipc::writer::{DictionaryHandling, FileWriter, IpcWriteOptions};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::{KeyValue, SortingColumn};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;

use super::{date_of, file_schema, leaf_index, BatchBuilder, SCHEMA_ID, SCHEMA_KEY};
use crate::error::{Error, Result};
use crate::event::Event;

/// Rows per Parquet row group (and per Arrow batch handed to a writer at once): in the 128k-1M
/// range engines plan well with, small enough that the row groups of every open file fit in
/// memory together.
pub const ROW_GROUP_ROWS: usize = 128 * 1024;

/// Rows buffered per file before they are handed to its writer.
const BATCH_ROWS: usize = 16 * 1024;

/// The file format of an export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// Apache Parquet: ZSTD, page statistics and offset index, bloom filters on session and zxid.
    Parquet,
    /// Arrow IPC file (Feather v2), ZSTD-compressed buffers.
    Arrow,
    /// One JSON object per line, with the schema's column names (nulls left out; times in
    /// RFC 3339; ids as the same signed numbers as in Parquet).
    Jsonl,
}

impl ExportFormat {
    fn ext(self) -> &'static str {
        match self {
            ExportFormat::Parquet => "parquet",
            ExportFormat::Arrow => "arrow",
            ExportFormat::Jsonl => "jsonl",
        }
    }
}

/// What an export wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExportReport {
    /// The files published, in the order they were finished.
    pub files: Vec<PathBuf>,
    /// Rows written.
    pub rows: u64,
    /// Bytes of the files published.
    pub bytes: u64,
}

enum Sink {
    Parquet(ArrowWriter<BufWriter<File>>),
    Arrow(FileWriter<BufWriter<File>>),
    Jsonl(arrow_json::LineDelimitedWriter<BufWriter<File>>),
}

struct Part {
    tmp: PathBuf,
    dest: PathBuf,
    rows: BatchBuilder,
    sink: Option<Sink>,
}

/// A file's partition: (date, ensemble, node).
type PartKey = (String, Arc<str>, Arc<str>);

/// Writes events into a lake directory (see the module documentation).
pub struct Exporter {
    out: PathBuf,
    format: ExportFormat,
    key: String,
    /// Source path → the name of the format it was read with (the `source` column).
    formats: HashMap<String, String>,
    open: BTreeMap<PartKey, Part>,
    /// How many files each (date, ensemble, node) has had: one, unless its events did not come
    /// in time order, when the next gets a numbered name rather than replacing the one
    /// published.
    files: HashMap<PartKey, usize>,
    report: ExportReport,
}

/// A path component made of the characters every file system and engine takes.
fn component(s: &str) -> String {
    let clean: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if clean == s && !s.is_empty() && !s.starts_with('.') {
        clean
    } else {
        // Two names that clean to the same text stay apart.
        format!("{}_{:08x}", clean.trim_start_matches('.'), fnv(s) as u32)
    }
}

/// FNV-1a of `s` (file names derive from it: stable across runs and builds).
pub(crate) fn fnv(s: &str) -> u64 {
    crate::event::fnv1a(s.as_bytes())
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |e| Error::io(path, e)
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(dir, e))
}

impl Exporter {
    /// An export into `out`, named by `what` (the query and window: the same `what` replaces
    /// the same files). Each event goes to its own ensemble's partition.
    pub fn new(
        out: &Path,
        format: ExportFormat,
        what: &str,
        formats: HashMap<String, String>,
    ) -> Result<Exporter> {
        Exporter::keyed(out, format, &format!("{:016x}", fnv(what)), formats)
    }

    /// An export into `out` whose files are named with `key` (`part-NODE-KEY.EXT`): the same
    /// key replaces the same files. `key` is made of letters, digits, `-` and `_`.
    pub fn keyed(
        out: &Path,
        format: ExportFormat,
        key: &str,
        formats: HashMap<String, String>,
    ) -> Result<Exporter> {
        if key.is_empty()
            || !key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(Error::Internal(format!("lake: bad file key {key:?}")));
        }
        std::fs::create_dir_all(out).map_err(io(out))?;
        Ok(Exporter {
            out: out.to_path_buf(),
            format,
            key: key.to_string(),
            formats,
            open: BTreeMap::new(),
            files: HashMap::new(),
            report: ExportReport::default(),
        })
    }

    /// Writes one event (events must come in time order).
    pub fn push(&mut self, e: &Event) -> Result<()> {
        let date = date_of(e.ts);
        // A later date closes the earlier dates' files (events without a time come first).
        let done: Vec<PartKey> = self
            .open
            .keys()
            .filter(|(d, _, _)| *d < date)
            .cloned()
            .collect();
        for k in done {
            if let Some(p) = self.open.remove(&k) {
                self.publish(p)?;
            }
        }
        let k = (date, e.ensemble.clone(), e.node.clone());
        if !self.open.contains_key(&k) {
            let n = {
                let n = self.files.entry(k.clone()).or_default();
                *n += 1;
                *n
            };
            let p = self.part(&k.0, &k.1, &k.2, n)?;
            self.open.insert(k.clone(), p);
        }
        let format = self.formats.get(&*e.source).map(String::as_str);
        let part = self
            .open
            .get_mut(&k)
            .ok_or_else(|| Error::Internal("lake: a file vanished while open".into()))?;
        part.rows.push(e, format)?;
        self.report.rows += 1;
        if part.rows.len() >= BATCH_ROWS {
            let batch = part.rows.finish_keeping()?;
            write(part, &batch)?;
        }
        Ok(())
    }

    /// Finishes and publishes every file; what was published.
    pub fn finish(mut self) -> Result<ExportReport> {
        let open = std::mem::take(&mut self.open);
        for (_, p) in open {
            self.publish(p)?;
        }
        Ok(std::mem::take(&mut self.report))
    }

    fn part(&self, date: &str, ensemble: &str, node: &str, n: usize) -> Result<Part> {
        let dir = self
            .out
            .join(format!("ensemble={}", component(ensemble)))
            .join(format!("date={date}"));
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        let seq = if n > 1 {
            format!("-{n}")
        } else {
            String::new()
        };
        let name = format!(
            "part-{}-{}{seq}.{}",
            component(node),
            self.key,
            self.format.ext()
        );
        let tmp = dir.join(format!(".{name}.tmp"));
        let file = File::create(&tmp).map_err(io(&tmp))?;
        let w = BufWriter::with_capacity(1 << 20, file);
        let fail = |e: String| Error::Io {
            path: tmp.clone(),
            error: std::io::Error::other(e),
        };
        let sink = match self.format {
            ExportFormat::Parquet => Sink::Parquet(
                ArrowWriter::try_new(w, file_schema(), Some(parquet_properties()))
                    .map_err(|e| fail(e.to_string()))?,
            ),
            ExportFormat::Arrow => {
                let opts = IpcWriteOptions::default()
                    .try_with_compression(Some(arrow_ipc::CompressionType::ZSTD))
                    .map_err(|e| fail(e.to_string()))?
                    .with_dictionary_handling(DictionaryHandling::Delta);
                Sink::Arrow(
                    FileWriter::try_new_with_options(w, &file_schema(), opts)
                        .map_err(|e| fail(e.to_string()))?,
                )
            }
            ExportFormat::Jsonl => Sink::Jsonl(arrow_json::LineDelimitedWriter::new(w)),
        };
        Ok(Part {
            dest: dir.join(name),
            tmp,
            rows: BatchBuilder::new(false),
            sink: Some(sink),
        })
    }

    fn publish(&mut self, mut p: Part) -> Result<()> {
        if !p.rows.is_empty() {
            let batch = p.rows.finish_keeping()?;
            write(&mut p, &batch)?;
        }
        let fail = |e: String| Error::Io {
            path: p.tmp.clone(),
            error: std::io::Error::other(e),
        };
        let file = match p.sink.take() {
            Some(Sink::Parquet(w)) => w.into_inner().map_err(|e| fail(e.to_string()))?,
            Some(Sink::Arrow(mut w)) => {
                w.finish().map_err(|e| fail(e.to_string()))?;
                w.into_inner().map_err(|e| fail(e.to_string()))?
            }
            Some(Sink::Jsonl(mut w)) => {
                w.finish().map_err(|e| fail(e.to_string()))?;
                w.into_inner()
            }
            None => return Err(Error::Internal("lake: a file was published twice".into())),
        };
        let file = file
            .into_inner()
            .map_err(|e| Error::io(&p.tmp, e.into_error()))?;
        file.sync_all().map_err(io(&p.tmp))?;
        let bytes = file.metadata().map_err(io(&p.tmp))?.len();
        drop(file);
        std::fs::rename(&p.tmp, &p.dest).map_err(io(&p.dest))?;
        if let Some(dir) = p.dest.parent() {
            sync_dir(dir)?;
        }
        self.report.bytes += bytes;
        self.report.files.push(p.dest.clone());
        Ok(())
    }
}

impl Drop for Part {
    fn drop(&mut self) {
        // A part dropped unpublished (an error, an interrupted export) leaves nothing behind.
        if self.sink.is_some() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

fn write(p: &mut Part, batch: &RecordBatch) -> Result<()> {
    let tmp = p.tmp.clone();
    let fail = |e: String| Error::Io {
        path: tmp.clone(),
        error: std::io::Error::other(e),
    };
    match p.sink.as_mut() {
        Some(Sink::Parquet(w)) => w.write(batch).map_err(|e| fail(e.to_string())),
        Some(Sink::Arrow(w)) => w.write(batch).map_err(|e| fail(e.to_string())),
        Some(Sink::Jsonl(w)) => w.write(batch).map_err(|e| fail(e.to_string())),
        None => Err(Error::Internal("lake: write after publish".into())),
    }
}

fn parquet_properties() -> WriterProperties {
    let sorting = ["node", "ts"]
        .iter()
        .filter_map(|c| leaf_index(c))
        .map(|i| SortingColumn {
            column_idx: i as i32,
            descending: false,
            nulls_first: true,
        })
        .collect();
    let mut b = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_sorting_columns(Some(sorting))
        .set_created_by(format!("zklens {}", env!("CARGO_PKG_VERSION")))
        .set_key_value_metadata(Some(vec![KeyValue::new(
            SCHEMA_KEY.to_string(),
            SCHEMA_ID.to_string(),
        )]));
    for c in ["session", "zxid"] {
        b = b
            .set_column_bloom_filter_enabled(ColumnPath::from(c), true)
            .set_column_bloom_filter_max_ndv(ColumnPath::from(c), ROW_GROUP_ROWS as u64);
    }
    // Messages are long and unique: statistics of their first bytes say little and cost pages.
    b = b.set_column_statistics_enabled(ColumnPath::from("message"), EnabledStatistics::Chunk);
    b.build()
}
