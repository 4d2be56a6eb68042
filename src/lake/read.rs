//! Reading a lake back: the Parquet files of a lake directory as [`Event`]s, so the analysis
//! that runs on the index runs on the lake too (`zklens incidents --lake DIR`).
//!
//! What the lake keeps, the events read back keep: times are microseconds (the index's
//! nanoseconds below a microsecond are gone; log lines and transactions carry milliseconds),
//! the source path and offset, the ids, and the attributes. The ensemble comes from each file's
//! `ensemble=NAME` directory.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Int32Type, Int64Type, TimestampMicrosecondType};
use arrow_array::{Array, ArrayRef, RecordBatch};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::{SCHEMA_ID, SCHEMA_KEY};
use crate::error::{Error, Result};
use crate::event::{Attrs, Event, Level};

/// Rows decoded at a time.
const READ_BATCH: usize = 8192;

/// The Parquet files under `dir` (dot-names, a writer's unfinished files, skipped), in path
/// order, each with the ensemble its path names.
pub fn lake_files(dir: &Path) -> Result<Vec<(PathBuf, Arc<str>)>> {
    fn walk(d: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
        let rd = std::fs::read_dir(d).map_err(|e| Error::io(d, e))?;
        let mut entries: Vec<_> = rd.filter_map(|e| e.ok()).collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let name = e.file_name();
            if name.to_string_lossy().starts_with('.') {
                continue;
            }
            let p = e.path();
            let Ok(ft) = e.file_type() else { continue };
            if ft.is_dir() {
                walk(&p, out)?;
            } else if ft.is_file() && p.extension().is_some_and(|x| x == "parquet") {
                out.push(p);
            }
        }
        Ok(())
    }
    let meta = std::fs::metadata(dir).map_err(|e| Error::io(dir, e))?;
    if !meta.is_dir() {
        return Err(Error::Param(format!(
            "{}: not a lake directory (zklens export --out writes one)",
            dir.display()
        )));
    }
    let mut files = Vec::new();
    walk(dir, &mut files)?;
    Ok(files
        .into_iter()
        .map(|p| {
            let e = crate::event::ensemble_in_path(&p)
                .map_or_else(crate::event::default_ensemble, Arc::from);
            (p, e)
        })
        .collect())
}

/// Every event of the lake under `dir` that `keep` accepts, read file by file (memory holds
/// what is kept and one batch). A file that is not a `zklens.event.v1` Parquet file, or is
/// damaged, is an error naming it.
pub fn read_lake(dir: &Path, keep: &mut dyn FnMut(&Event) -> bool) -> Result<Vec<Event>> {
    let mut out = Vec::new();
    for (path, ensemble) in lake_files(dir)? {
        read_file(&path, &ensemble, &mut |e| {
            if keep(&e) {
                out.push(e);
            }
        })?;
    }
    Ok(out)
}

fn bad(path: &Path, reason: String) -> Error {
    Error::BadInput {
        path: path.to_path_buf(),
        offset: 0,
        reason,
    }
}

/// Opens one lake file, checking that it is Parquet and `zklens.event.v1` (its footer only).
fn open_checked(path: &Path) -> Result<ParquetRecordBatchReaderBuilder<File>> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|e| bad(path, format!("not a readable Parquet file: {e}")))?;
    let id = builder.schema().metadata().get(SCHEMA_KEY).cloned();
    if id.as_deref() != Some(SCHEMA_ID) {
        return Err(bad(
            path,
            format!(
                "not a {SCHEMA_ID} file (its {SCHEMA_KEY} is {})",
                id.map_or_else(|| "missing".to_string(), |v| format!("{v:?}"))
            ),
        ));
    }
    Ok(builder)
}

/// Checks that a lake file is a `zklens.event.v1` Parquet file, reading its footer only: an
/// error names the file.
pub fn check_file(path: &Path) -> Result<()> {
    open_checked(path).map(drop)
}

/// Reads one lake file, handing each event to `each`.
pub fn read_file(path: &Path, ensemble: &Arc<str>, each: &mut dyn FnMut(Event)) -> Result<()> {
    let builder = open_checked(path)?;
    let reader = builder
        .with_batch_size(READ_BATCH)
        .build()
        .map_err(|e| bad(path, e.to_string()))?;
    for batch in reader {
        let batch = batch.map_err(|e| bad(path, format!("damaged: {e}")))?;
        decode(&batch, ensemble, each).map_err(|reason| bad(path, reason))?;
    }
    Ok(())
}

/// A dictionary column's values, each shared once (`Arc<str>` per distinct value).
struct Dict {
    keys: Vec<Option<usize>>,
    values: Vec<Arc<str>>,
}

impl Dict {
    fn of(col: &ArrayRef, name: &str) -> std::result::Result<Dict, String> {
        let d = col
            .as_dictionary_opt::<Int32Type>()
            .ok_or_else(|| format!("column {name} is not dictionary<int32, utf8>"))?;
        let vals = d
            .values()
            .as_string_opt::<i32>()
            .ok_or_else(|| format!("column {name}'s dictionary is not utf8"))?;
        let values: Vec<Arc<str>> = (0..vals.len()).map(|i| Arc::from(vals.value(i))).collect();
        let keys = (0..d.len())
            .map(|i| {
                if d.is_null(i) {
                    Ok(None)
                } else {
                    let k = usize::try_from(d.keys().value(i))
                        .ok()
                        .filter(|&k| k < values.len())
                        .ok_or_else(|| format!("column {name}: a key outside its dictionary"))?;
                    Ok(Some(k))
                }
            })
            .collect::<std::result::Result<Vec<_>, String>>()?;
        Ok(Dict { keys, values })
    }

    fn get(&self, i: usize) -> Option<Arc<str>> {
        self.keys[i].map(|k| self.values[k].clone())
    }
}

fn decode(
    b: &RecordBatch,
    ensemble: &Arc<str>,
    each: &mut dyn FnMut(Event),
) -> std::result::Result<(), String> {
    let col = |name: &str| -> std::result::Result<&ArrayRef, String> {
        b.column_by_name(name)
            .ok_or_else(|| format!("no column {name}"))
    };
    let ts = col("ts")?
        .as_primitive_opt::<TimestampMicrosecondType>()
        .ok_or("column ts is not timestamp[us]")?;
    let node = Dict::of(col("node")?, "node")?;
    let kind = Dict::of(col("kind")?, "kind")?;
    let level = Dict::of(col("level")?, "level")?;
    let logger = Dict::of(col("logger")?, "logger")?;
    let thread = Dict::of(col("thread")?, "thread")?;
    let i64s = |name: &str| {
        col(name).and_then(|c| {
            c.as_primitive_opt::<Int64Type>()
                .ok_or_else(|| format!("column {name} is not int64"))
        })
    };
    let i32s = |name: &str| {
        col(name).and_then(|c| {
            c.as_primitive_opt::<Int32Type>()
                .ok_or_else(|| format!("column {name} is not int32"))
        })
    };
    let strs = |name: &str| {
        col(name).and_then(|c| {
            c.as_string_opt::<i32>()
                .ok_or_else(|| format!("column {name} is not utf8"))
        })
    };
    let (session, zxid, src_offset, line) = (
        i64s("session")?,
        i64s("zxid")?,
        i64s("src_offset")?,
        i64s("line")?,
    );
    let (epoch, server, leader, myid) = (
        i32s("epoch")?,
        i32s("server")?,
        i32s("leader")?,
        i32s("myid")?,
    );
    let (path, peer, state, message, src_path) = (
        strs("path")?,
        strs("peer")?,
        strs("state")?,
        strs("message")?,
        strs("src_path")?,
    );
    let attributes = col("attributes")?
        .as_map_opt()
        .ok_or("column attributes is not a map")?;
    let akeys = attributes
        .keys()
        .as_string_opt::<i32>()
        .ok_or("attributes' keys are not utf8")?;
    let avals = attributes
        .values()
        .as_string_opt::<i32>()
        .ok_or("attributes' values are not utf8")?;
    let offsets = attributes.value_offsets();
    let opt_i64 =
        |a: &arrow_array::PrimitiveArray<Int64Type>, i: usize| (!a.is_null(i)).then(|| a.value(i));
    let opt_i32 =
        |a: &arrow_array::PrimitiveArray<Int32Type>, i: usize| (!a.is_null(i)).then(|| a.value(i));
    let opt_str =
        |a: &arrow_array::StringArray, i: usize| (!a.is_null(i)).then(|| a.value(i).to_string());
    for i in 0..b.num_rows() {
        let mut attrs = Attrs {
            // Java's longs back to the same 64 bits.
            session: opt_i64(session, i).map(|v| v as u64),
            zxid: opt_i64(zxid, i).map(|v| v as u64),
            epoch: opt_i32(epoch, i).and_then(|v| u64::try_from(v).ok()),
            server: opt_i32(server, i).and_then(|v| u64::try_from(v).ok()),
            leader: opt_i32(leader, i).and_then(|v| u64::try_from(v).ok()),
            path: opt_str(path, i),
            peer: opt_str(peer, i),
            state: opt_str(state, i),
            ..Attrs::default()
        };
        let mut e = Event {
            ts: (!ts.is_null(i)).then(|| ts.value(i).saturating_mul(1000)),
            ensemble: ensemble.clone(),
            node: node.get(i).ok_or("a row without a node")?,
            myid: opt_i32(myid, i).and_then(|v| u64::try_from(v).ok()),
            source: Arc::from(src_path.value(i)),
            offset: u64::try_from(src_offset.value(i)).unwrap_or(0),
            line: u64::try_from(line.value(i)).unwrap_or(0),
            level: level.get(i).and_then(|l| Level::parse(&l)),
            thread: thread.get(i),
            logger: logger.get(i),
            message: message.value(i).to_string(),
            kind: kind.get(i).ok_or("a row without a kind")?,
            attrs: Attrs::default(),
            paths: Vec::new(),
            replicas: Vec::new(),
        };
        let (lo, hi) = (offsets[i] as usize, offsets[i + 1] as usize);
        for j in lo..hi.min(akeys.len()) {
            let v = avals.value(j);
            let num = || v.parse::<u64>().ok();
            match akeys.value(j) {
                "duration_ms" => attrs.duration_ms = num(),
                "timeout_ms" => attrs.timeout_ms = num(),
                "epoch" => attrs.epoch = num(),
                "server" => attrs.server = num(),
                "leader" => attrs.leader = num(),
                "myid" => e.myid = num(),
                "paths" => e.paths = v.split('\n').map(str::to_string).collect(),
                "replicas" => e.replicas = v.split('\n').map(Arc::from).collect(),
                _ => {}
            }
        }
        e.attrs = attrs;
        each(e);
    }
    Ok(())
}
