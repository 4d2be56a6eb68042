//! `zklens export`: the index's events into a lake directory ([`zklens::lake`]).

use std::io::Write;

use anyhow::{bail, Result};

use zklens::app::{self, Filter};
use zklens::index::IndexHandle;
use zklens::lake::ExportFormat;

use super::out::Out;
use super::{ExportArgs, Global, LakeFormat};

/// `zklens export`: exit 0 when something was exported, 1 when nothing matched.
pub fn export(g: &Global, a: &ExportArgs) -> Result<u8> {
    if g.server.is_some() {
        bail!("export reads the local index: run it where the data directory is (no --server)");
    }
    let idx = IndexHandle::open(&g.data_dir())?;
    let format = match a.format {
        LakeFormat::Parquet => ExportFormat::Parquet,
        LakeFormat::Arrow => ExportFormat::Arrow,
        LakeFormat::Jsonl => ExportFormat::Jsonl,
    };
    let f = Filter {
        window: a.window.window()?,
        ..Filter::default()
    };
    let r = app::export(&idx, &a.query, &f, &a.queries.dirs, &a.out, format)?;
    let mut out = Out::new();
    writeln!(
        out,
        "{} events in {} files, {:.1} MB, under {}",
        r.rows,
        r.files.len(),
        r.bytes as f64 / 1e6,
        a.out.display()
    )?;
    out.flush()?;
    Ok(if r.rows > 0 { 0 } else { 1 })
}
