//! `zklens sql`: SQL over the events, run by DataFusion, from the index or from a lake.
//!
//! The events are one table, [`TABLE`] (`events`), with the lake's columns
//! ([`crate::lake::file_schema`], `zklens.event.v1`) followed by the lake's partition columns
//! `ensemble` and `date`, whichever holds them, so a statement written against one runs
//! unchanged against the other:
//! - **from a lake directory** the table is DataFusion's listing table over its Parquet files:
//!   `ensemble` and `date` prune whole directories, and the files' row-group statistics, page
//!   index and bloom filters (on `session` and `zxid`) skip what the filters exclude;
//! - **from the index** the table is [`IndexTable`]: the filters it understands (equality on the
//!   ids and names, ranges on `ts`, `zxid` and `epoch`, `IN` lists, `AND`/`OR` of those) become
//!   an index query, so only the matching events are read. DataFusion applies every filter
//!   again on what comes back, so a filter the index reads more widely costs time, never rows.
//!
//! Ids are `Int64`, as ZooKeeper keeps them; `zk_id('0x3000002f45e0000')` turns the hex that
//! logs print into that number (a session id whose top byte is 0x80 or more is negative, as
//! Java prints it), and `to_hex(session)` prints one back.
//!
//! Every statement runs under [`Limits`]: a memory pool (operators that can spill report what
//! they hold; an index scan counts the batches it builds), an optional time limit, and a row
//! limit on what is printed. Past one, the statement fails with an error that says which.

use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use datafusion::arrow::array::{Array, ArrayRef, Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::ScalarValue;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::error::DataFusionError;
use datafusion::execution::context::SQLOptions;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::logical_expr::{
    create_udf, expr::InList, Between, BinaryExpr, ColumnarValue, Expr, Operator,
    TableProviderFilterPushDown, TableType, Volatility,
};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::{SessionConfig, SessionContext};
use futures::StreamExt;

use crate::error::{Error, Result};
use crate::event::parse_id;
use crate::index::IndexHandle;
use crate::lake;
use crate::query::{Ast, Compiler};
use crate::time::{self, Tz};

/// The table the statements read.
pub const TABLE: &str = "events";

/// Events read from the index store at a time (one record batch each).
const INDEX_RUN: usize = 8192;

/// Where the `events` table comes from.
pub enum Tables {
    /// An index opened here.
    Index(Box<IndexHandle>),
    /// A lake directory (`zklens export --out DIR`, or `[sinks.parquet]`'s).
    Lake(std::path::PathBuf),
}

/// What one statement may use.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Bytes of memory the statement's operators (and an index scan's batches) may hold.
    pub memory: usize,
    /// Wall-clock time for planning and running it.
    pub timeout: Option<Duration>,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            memory: 2 << 30,
            timeout: None,
        }
    }
}

/// The columns of [`TABLE`]: the lake file's columns, then `ensemble` and `date`.
pub fn table_schema() -> SchemaRef {
    let file = lake::file_schema();
    let mut fields: Vec<Field> = file.fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.extend(
        partition_cols()
            .into_iter()
            .map(|(n, t)| Field::new(n, t, false)),
    );
    Arc::new(Schema::new(fields).with_metadata(file.metadata().clone()))
}

fn partition_cols() -> Vec<(String, DataType)> {
    vec![
        ("ensemble".to_string(), DataType::Utf8),
        ("date".to_string(), DataType::Utf8),
    ]
}

fn df_error(e: DataFusionError) -> Error {
    // DataFusion's messages carry their own context ("Error during planning: ...").
    Error::Query(format!("sql: {}", e.strip_backtrace()))
}

fn to_df(e: Error) -> DataFusionError {
    DataFusionError::External(Box::new(e))
}

/// Runs one SQL statement over `tables`, handing each result batch to `each` (which returns
/// `false` to stop early: a closed pipe, enough rows). Returns the result's schema.
pub fn run(
    tables: Tables,
    sql: &str,
    limits: &Limits,
    each: &mut dyn FnMut(&RecordBatch) -> Result<bool>,
) -> Result<SchemaRef> {
    let started = Instant::now();
    let deadline = limits.timeout.map(|t| started + t);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2),
        )
        .enable_all()
        .build()
        .map_err(|e| Error::Internal(format!("sql: cannot start the async runtime: {e}")))?;
    let work = async {
        let ctx = context(tables, limits, deadline).await?;
        // Queries only: no DDL (CREATE EXTERNAL TABLE would read any file), no DML (COPY TO
        // and INSERT would write files), no SET.
        let read_only = SQLOptions::new()
            .with_allow_ddl(false)
            .with_allow_dml(false)
            .with_allow_statements(false);
        let df = ctx
            .sql_with_options(sql, read_only)
            .await
            .map_err(df_error)?;
        let schema: SchemaRef = Arc::clone(df.schema().inner());
        let mut stream = df.execute_stream().await.map_err(df_error)?;
        while let Some(batch) = stream.next().await {
            let batch = batch.map_err(df_error)?;
            if batch.num_rows() > 0 && !each(&batch)? {
                break;
            }
        }
        Ok(schema)
    };
    rt.block_on(async {
        match limits.timeout {
            Some(t) => tokio::time::timeout(t, work).await.unwrap_or_else(|_| {
                Err(Error::Budget(format!(
                    "sql: the statement ran out of its time limit ({:.1} s)",
                    t.as_secs_f64()
                )))
            }),
            None => work.await,
        }
    })
}

/// A session with [`TABLE`] registered and `zk_id` defined.
async fn context(
    tables: Tables,
    limits: &Limits,
    deadline: Option<Instant>,
) -> Result<SessionContext> {
    let runtime = RuntimeEnvBuilder::new()
        .with_memory_limit(limits.memory, 1.0)
        .build_arc()
        .map_err(df_error)?;
    let mut config = SessionConfig::new()
        .with_information_schema(true)
        .with_default_catalog_and_schema("zklens", "public");
    // Filters evaluated while decoding Parquet (late materialization): rows a filter rejects
    // never have their other columns decoded.
    config.options_mut().execution.parquet.pushdown_filters = true;
    config.options_mut().execution.parquet.reorder_filters = true;
    config.options_mut().execution.parquet.bloom_filter_on_read = true;
    let ctx = SessionContext::new_with_config_rt(config, runtime);
    ctx.register_udf(zk_id_udf());
    let table: Arc<dyn TableProvider> = match tables {
        Tables::Lake(dir) => lake_table(&dir)?,
        Tables::Index(idx) => Arc::new(IndexTable {
            idx: Arc::from(idx),
            memory: limits.memory,
            deadline,
        }),
    };
    ctx.register_table(TABLE, table).map_err(df_error)?;
    Ok(ctx)
}

/// The listing table over a lake directory's Parquet files (dot-names, a writer's staged
/// files, are not `.parquet` and so not read).
fn lake_table(dir: &Path) -> Result<Arc<dyn TableProvider>> {
    // The same checks, and the same errors naming the file, as the rest of `--lake`: every
    // file's footer is read here, so a stray or damaged file is named before DataFusion runs.
    for (file, _) in lake::lake_files(dir)? {
        lake::check_file(&file)?;
    }
    let abs = std::fs::canonicalize(dir).map_err(|e| Error::io(dir, e))?;
    let mut url = abs.to_string_lossy().into_owned();
    if !url.ends_with('/') {
        url.push('/');
    }
    let url = ListingTableUrl::parse(&url).map_err(df_error)?;
    let options = ListingOptions::new(Arc::new(ParquetFormat::default()))
        .with_file_extension(".parquet")
        .with_table_partition_cols(partition_cols());
    let config = ListingTableConfig::new(url)
        .with_listing_options(options)
        .with_schema(lake::file_schema());
    Ok(Arc::new(ListingTable::try_new(config).map_err(df_error)?))
}

/// `zk_id(text)`: a ZooKeeper id as logs print it (`0x`-prefixed hex, hex with a-f, or
/// decimal) as the `Int64` the table holds.
fn zk_id_udf() -> datafusion::logical_expr::ScalarUDF {
    let f = Arc::new(
        |args: &[ColumnarValue]| -> datafusion::error::Result<ColumnarValue> {
            let one = |s: Option<&str>| -> datafusion::error::Result<Option<i64>> {
                match s {
                    None => Ok(None),
                    Some(s) => parse_id(s.trim()).map(|v| Some(v as i64)).ok_or_else(|| {
                        DataFusionError::Execution(format!(
                            "zk_id: {s:?} is not an id (0x-prefixed hex, hex, or decimal)"
                        ))
                    }),
                }
            };
            match args.first() {
                Some(ColumnarValue::Scalar(ScalarValue::Utf8(s))) => Ok(ColumnarValue::Scalar(
                    ScalarValue::Int64(one(s.as_deref())?),
                )),
                Some(ColumnarValue::Array(a)) => {
                    let strings = a.as_any().downcast_ref::<StringArray>().ok_or_else(|| {
                        DataFusionError::Execution("zk_id takes a string".to_string())
                    })?;
                    let out: datafusion::error::Result<Int64Array> =
                        strings.iter().map(one).collect();
                    Ok(ColumnarValue::Array(Arc::new(out?) as ArrayRef))
                }
                _ => Err(DataFusionError::Execution(
                    "zk_id takes one string".to_string(),
                )),
            }
        },
    );
    create_udf(
        "zk_id",
        vec![DataType::Utf8],
        DataType::Int64,
        Volatility::Immutable,
        f,
    )
}

/// [`TABLE`] over an index: the filters it understands are read from the index.
pub struct IndexTable {
    idx: Arc<IndexHandle>,
    memory: usize,
    deadline: Option<Instant>,
}

impl std::fmt::Debug for IndexTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IndexTable")
            .field("memory", &self.memory)
            .finish()
    }
}

#[async_trait]
impl TableProvider for IndexTable {
    fn schema(&self) -> SchemaRef {
        table_schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> datafusion::error::Result<Vec<TableProviderFilterPushDown>> {
        Ok(filters
            .iter()
            .map(|f| match to_ast(f) {
                Some(_) => TableProviderFilterPushDown::Inexact,
                None => TableProviderFilterPushDown::Unsupported,
            })
            .collect())
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> datafusion::error::Result<Arc<dyn ExecutionPlan>> {
        let mut parts: Vec<Ast> = filters.iter().filter_map(to_ast).collect();
        let ast = match parts.len() {
            0 => Ast::All,
            1 => parts.remove(0),
            _ => Ast::And(parts),
        };
        let batches = self.read(&ast, limit).map_err(to_df)?;
        let plan =
            MemorySourceConfig::try_new_exec(&[batches], table_schema(), projection.cloned())?;
        Ok(plan as Arc<dyn ExecutionPlan>)
    }
}

impl IndexTable {
    /// The events `ast` matches (at most `limit`, when DataFusion passes one), as batches of
    /// [`table_schema`].
    fn read(&self, ast: &Ast, limit: Option<usize>) -> Result<Vec<RecordBatch>> {
        let idx = &*self.idx;
        let searcher = idx.searcher();
        let q = Compiler::new(idx, &searcher, Tz::Utc).compile(ast)?;
        let hits = idx.search_within(q.as_ref(), limit, self.deadline)?;
        if hits.interrupted {
            return Err(Error::Budget(
                "sql: the index scan ran out of the time limit".into(),
            ));
        }
        let formats = idx.state().checkpoints.formats();
        let mut out = Vec::new();
        let mut held = 0usize;
        let mut b = lake::BatchBuilder::new(false);
        for run in hits.hits.chunks(INDEX_RUN) {
            if self.deadline.is_some_and(|d| Instant::now() > d) {
                return Err(Error::Budget(
                    "sql: the index scan ran out of the time limit".into(),
                ));
            }
            let addrs: Vec<u64> = run.iter().map(|h| h.1).collect();
            let events = idx.fetch(&addrs)?;
            let mut ensembles = Vec::with_capacity(events.len());
            let mut dates = Vec::with_capacity(events.len());
            for e in &events {
                b.push(e, formats.get(&*e.source).map(String::as_str))?;
                ensembles.push(e.ensemble.to_string());
                dates.push(lake::date_of(e.ts));
            }
            let file = b.finish()?;
            let mut cols: Vec<ArrayRef> = file.columns().to_vec();
            cols.push(Arc::new(StringArray::from(ensembles)));
            cols.push(Arc::new(StringArray::from(dates)));
            let batch = RecordBatch::try_new(table_schema(), cols)
                .map_err(|e| Error::Internal(format!("sql: index batch: {e}")))?;
            held += batch.get_array_memory_size();
            if held > self.memory {
                return Err(Error::Budget(format!(
                    "sql: the events this statement reads from the index pass its memory limit \
                     ({} MB): narrow it with WHERE on ts, session, zxid, node, kind or ensemble, \
                     or raise --max-memory, or query a lake (zklens export, then --lake)",
                    self.memory >> 20
                )));
            }
            out.push(batch);
        }
        Ok(out)
    }
}

/// The column a filter side names, looking through casts (DataFusion casts a dictionary
/// column to compare it with a string).
fn column(e: &Expr) -> Option<&str> {
    match e {
        Expr::Column(c) => Some(c.name.as_str()),
        Expr::Cast(c) => column(&c.expr),
        Expr::TryCast(c) => column(&c.expr),
        _ => None,
    }
}

/// A literal's value, for the index query language.
enum Lit {
    Int(i64),
    Str(String),
    /// A time in nanoseconds.
    Time(i64),
}

fn literal(e: &Expr) -> Option<Lit> {
    let v = match e {
        Expr::Literal(v, _) => v,
        Expr::Cast(c) => return literal(&c.expr),
        _ => return None,
    };
    scalar(v)
}

fn scalar(v: &ScalarValue) -> Option<Lit> {
    Some(match v {
        ScalarValue::Int64(Some(x)) => Lit::Int(*x),
        ScalarValue::Int32(Some(x)) => Lit::Int(i64::from(*x)),
        ScalarValue::Int16(Some(x)) => Lit::Int(i64::from(*x)),
        ScalarValue::Int8(Some(x)) => Lit::Int(i64::from(*x)),
        ScalarValue::UInt32(Some(x)) => Lit::Int(i64::from(*x)),
        ScalarValue::UInt64(Some(x)) => Lit::Int(*x as i64),
        ScalarValue::Utf8(Some(s))
        | ScalarValue::LargeUtf8(Some(s))
        | ScalarValue::Utf8View(Some(s)) => Lit::Str(s.clone()),
        ScalarValue::Dictionary(_, inner) => return scalar(inner),
        ScalarValue::TimestampSecond(Some(x), _) => Lit::Time(x.checked_mul(1_000_000_000)?),
        ScalarValue::TimestampMillisecond(Some(x), _) => Lit::Time(x.checked_mul(1_000_000)?),
        ScalarValue::TimestampMicrosecond(Some(x), _) => Lit::Time(x.checked_mul(1000)?),
        ScalarValue::TimestampNanosecond(Some(x), _) => Lit::Time(*x),
        _ => return None,
    })
}

/// The columns the index can look up, and how.
#[derive(Clone, Copy, PartialEq)]
enum Col {
    /// An id held as the Java `long` (`session`, `zxid`): the index holds the same 64 bits
    /// unsigned.
    Id,
    /// A small number (`epoch`, `server`, `leader`, `myid`).
    Num,
    /// A name (`node`, `kind`, `level`, `ensemble`, `path`, `peer`, `state`, `thread`,
    /// `logger`): the index holds it whole.
    Name,
    /// `ts`.
    Time,
}

fn col_kind(name: &str) -> Option<Col> {
    Some(match name {
        "session" | "zxid" => Col::Id,
        "epoch" | "server" | "leader" | "myid" => Col::Num,
        "node" | "kind" | "level" | "ensemble" | "path" | "peer" | "state" | "thread"
        | "logger" => Col::Name,
        "ts" => Col::Time,
        _ => return None,
    })
}

fn term(field: &str, kind: Col, v: &Lit) -> Option<Ast> {
    let value = match (kind, v) {
        (Col::Id, Lit::Int(x)) => format!("0x{:x}", *x as u64),
        (Col::Num, Lit::Int(x)) if *x >= 0 => x.to_string(),
        (Col::Name, Lit::Str(s)) => s.clone(),
        _ => return None,
    };
    Some(Ast::Term {
        field: Some(field.to_string()),
        value,
        quoted: true,
    })
}

/// A time bound widened to whole seconds (the index then returns a superset: DataFusion
/// filters again at the column's microseconds).
fn time_bound(ns: i64, upper: bool) -> String {
    let s = ns.div_euclid(1_000_000_000);
    let s = if upper && ns.rem_euclid(1_000_000_000) != 0 {
        s + 1
    } else {
        s
    };
    time::rfc3339(s.saturating_mul(1_000_000_000))
}

/// A range on `field` from one comparison, `col OP lit`.
fn range(field: &str, kind: Col, op: Operator, v: &Lit) -> Option<Ast> {
    let bound = |upper: bool| -> Option<String> {
        match (kind, v) {
            (Col::Time, Lit::Time(ns)) => Some(time_bound(*ns, upper)),
            // zxids are non-negative (the epoch is below 2^31); session ids are not ordered
            // in any way a range would mean.
            (Col::Id, Lit::Int(x)) if field == "zxid" && *x >= 0 => Some(format!("0x{x:x}")),
            (Col::Num, Lit::Int(x)) if *x >= 0 => Some(x.to_string()),
            _ => None,
        }
    };
    // Bounds are inclusive either way: a superset, filtered again above.
    let (lo, hi) = match op {
        Operator::Gt | Operator::GtEq => (Bound::Included(bound(false)?), Bound::Unbounded),
        Operator::Lt | Operator::LtEq => (Bound::Unbounded, Bound::Included(bound(true)?)),
        _ => return None,
    };
    Some(Ast::Range {
        field: field.to_string(),
        lo,
        hi,
    })
}

fn flip(op: Operator) -> Operator {
    match op {
        Operator::Gt => Operator::Lt,
        Operator::GtEq => Operator::LtEq,
        Operator::Lt => Operator::Gt,
        Operator::LtEq => Operator::GtEq,
        o => o,
    }
}

/// The index query for a filter, when the index can answer it (a superset of its rows).
fn to_ast(e: &Expr) -> Option<Ast> {
    match e {
        Expr::BinaryExpr(BinaryExpr { left, op, right }) => match op {
            Operator::And => {
                // Half of an AND is still a superset.
                match (to_ast(left), to_ast(right)) {
                    (Some(a), Some(b)) => Some(Ast::And(vec![a, b])),
                    (Some(a), None) | (None, Some(a)) => Some(a),
                    (None, None) => None,
                }
            }
            Operator::Or => Some(Ast::Or(vec![to_ast(left)?, to_ast(right)?])),
            _ => {
                let (field, v, op) = match (column(left), literal(right)) {
                    (Some(c), Some(v)) => (c, v, *op),
                    _ => (column(right)?, literal(left)?, flip(*op)),
                };
                let kind = col_kind(field)?;
                match op {
                    Operator::Eq if kind == Col::Time => Some(Ast::And(vec![
                        range(field, kind, Operator::GtEq, &v)?,
                        range(field, kind, Operator::LtEq, &v)?,
                    ])),
                    Operator::Eq => term(field, kind, &v),
                    _ => range(field, kind, op, &v),
                }
            }
        },
        Expr::Between(Between {
            expr,
            negated: false,
            low,
            high,
        }) => {
            let field = column(expr)?;
            let kind = col_kind(field)?;
            Some(Ast::And(vec![
                range(field, kind, Operator::GtEq, &literal(low)?)?,
                range(field, kind, Operator::LtEq, &literal(high)?)?,
            ]))
        }
        Expr::InList(InList {
            expr,
            list,
            negated: false,
        }) => {
            let field = column(expr)?;
            let kind = col_kind(field)?;
            if kind == Col::Time || list.is_empty() || list.len() > 1024 {
                return None;
            }
            let terms: Option<Vec<Ast>> = list
                .iter()
                .map(|v| term(field, kind, &literal(v)?))
                .collect();
            Some(Ast::Or(terms?))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::logical_expr::{col, lit};

    #[test]
    fn filters_the_index_understands_become_index_queries() {
        let q = to_ast(&col("session").eq(lit(0x3000002f45e0000_i64))).unwrap();
        assert_eq!(
            q,
            Ast::Term {
                field: Some("session".into()),
                value: "0x3000002f45e0000".into(),
                quoted: true
            }
        );
        // A session id Java prints negative is the same 64 bits.
        let q = to_ast(&col("session").eq(lit(-0x7f00_0000_0000_0000_i64))).unwrap();
        assert!(matches!(q, Ast::Term { value, .. } if value == "0x8100000000000000"));
        let q = to_ast(&lit("zk1").eq(col("node"))).unwrap();
        assert!(
            matches!(q, Ast::Term { field: Some(f), value, .. } if f == "node" && value == "zk1")
        );
        // One half of an AND is a superset; an OR needs both.
        assert!(to_ast(
            &col("node")
                .eq(lit("zk1"))
                .and(col("message").like(lit("%x%")))
        )
        .is_some());
        assert!(to_ast(
            &col("node")
                .eq(lit("zk1"))
                .or(col("message").like(lit("%x%")))
        )
        .is_none());
        assert!(to_ast(&col("zxid").gt_eq(lit(-1_i64))).is_none());
        assert!(to_ast(&col("message").eq(lit("x"))).is_none());
    }

    #[test]
    fn time_bounds_are_widened_to_whole_seconds() {
        let ns = 1_764_021_749_123_456_789_i64;
        assert_eq!(
            time_bound(ns, false),
            time::rfc3339(1_764_021_749_000_000_000)
        );
        assert_eq!(
            time_bound(ns, true),
            time::rfc3339(1_764_021_750_000_000_000)
        );
        assert_eq!(
            time_bound(1_764_021_749_000_000_000, true),
            time::rfc3339(1_764_021_749_000_000_000)
        );
    }
}
