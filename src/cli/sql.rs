//! `zklens sql`: one SQL statement over the events ([`zklens::app::sql`]), printed as a table,
//! JSON, JSON lines or CSV (`-o`, as the event commands). Exit 0 with rows, 1 without, 2 on an error.

use anyhow::Result;

use super::{Global, SqlArgs};

/// `zklens sql` in a build without the `sql` feature: says how to get it, and what works
/// meanwhile.
#[cfg(not(feature = "sql"))]
pub fn sql(_g: &Global, _a: &SqlArgs) -> Result<u8> {
    anyhow::bail!(
        "this zklens was built without SQL (DataFusion): build it with `cargo build --release \
         --features sql`; meanwhile `zklens export --out DIR` writes a lake that DuckDB, Spark \
         and Trino query (README: \"When one machine is not enough\")"
    )
}

/// `zklens sql`.
#[cfg(feature = "sql")]
pub fn sql(g: &Global, a: &SqlArgs) -> Result<u8> {
    use std::io::Write;
    use std::time::Duration;

    use anyhow::{bail, Context};
    use datafusion::arrow::array::RecordBatch;
    use zklens::app::sql::{self, Limits, Tables};
    use zklens::index::IndexHandle;

    use datafusion::arrow::json::{ArrayWriter, LineDelimitedWriter};

    use super::flags::Format;
    use super::out::Out;

    if g.server.is_some() {
        bail!("sql reads the index or a lake on this machine (--data-dir or --lake), not --server");
    }
    let tables = match &g.lake {
        Some(dir) => Tables::Lake(dir.clone()),
        None => Tables::Index(Box::new(IndexHandle::open(&g.data_dir())?)),
    };
    let timeout = match a.timeout {
        Some(s) if s.is_finite() && s > 0.0 => Some(Duration::from_secs_f64(s.min(1e9))),
        Some(s) => bail!("--timeout {s}: give a number of seconds above 0"),
        None => None,
    };
    let limits = Limits {
        memory: a.max_memory.saturating_mul(1 << 20),
        timeout,
    };
    let mut out = Out::new();
    let mut rows = 0usize;
    let mut table: Vec<RecordBatch> = Vec::new();
    let mut header_done = false;
    let format = a.output.format;
    // The JSON writers are kept across batches (one array, or one line per row); what each
    // batch adds is written out as it comes.
    let mut array = ArrayWriter::new(Vec::new());
    let mut lines = LineDelimitedWriter::new(Vec::new());
    let failed = |e: datafusion::arrow::error::ArrowError| {
        zklens::error::Error::Internal(format!("sql: writing the result: {e}"))
    };
    let schema = sql::run(tables, &a.statement, &limits, &mut |b| {
        rows += b.num_rows();
        match format {
            Format::Csv => {
                // The header once, before the first batch.
                let mut w = datafusion::arrow::csv::WriterBuilder::new()
                    .with_header(!header_done)
                    .build(Vec::new());
                w.write(b).map_err(failed)?;
                header_done = true;
                let _ = out.write_all(&w.into_inner());
            }
            Format::Json => {
                array.write(b).map_err(failed)?;
                let _ = out.write_all(&std::mem::take(array.get_mut()));
            }
            Format::Jsonl => {
                lines.write(b).map_err(failed)?;
                let _ = out.write_all(&std::mem::take(lines.get_mut()));
            }
            _ => table.push(b.clone()),
        }
        // A closed pipe stops the statement; exit() decides what it means.
        Ok(out.check().is_ok())
    })
    .context("sql")?;
    if format == Format::Json {
        array.finish().map_err(failed)?;
        let _ = out.write_all(&array.into_inner());
        writeln!(out)?;
    }
    if format == Format::Table {
        use datafusion::arrow::util::pretty;
        let text = if table.is_empty() {
            pretty::pretty_format_batches_with_schema(schema, &[]).map(|t| t.to_string())
        } else {
            pretty::pretty_format_batches(&table).map(|t| t.to_string())
        }
        .context("formatting the result")?;
        writeln!(out, "{text}")?;
        writeln!(out, "{rows} row{}", if rows == 1 { "" } else { "s" })?;
    }
    out.flush()?;
    out.check()?;
    Ok(if rows > 0 { 0 } else { 1 })
}
