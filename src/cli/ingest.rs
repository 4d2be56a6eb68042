//! `zklens ingest` (the batch pipeline, with its progress bar and summary) and `zklens parse`
//! (parsing without indexing).

use std::io::{self, IsTerminal, Write};

use anyhow::{Context, Result};

use zklens::event::Event;
use zklens::index::DataDir;
use zklens::parser::Registry;
use zklens::pipeline::batch::{self as ingest, IngestOptions, Status};
use zklens::render::write_events;
use zklens::source::text::TextOptions;
use zklens::source::NodeRule;

use super::out::Out;
use super::{IngestArgs, ParseArgs};

/// The format `--format` names, if any.
fn forced_format(
    registry: &Registry,
    name: Option<&str>,
    hint: &str,
) -> Result<Option<std::sync::Arc<zklens::parser::format::Format>>> {
    name.map(|n| {
        registry
            .get(n)
            .with_context(|| format!("unknown format {n:?}{hint}"))
    })
    .transpose()
}

/// `zklens ingest`.
pub fn ingest(a: &IngestArgs, dir: &DataDir, registry: &Registry) -> Result<u8> {
    let (tz, node_tz) = a.input.tz.per_node();
    let format = forced_format(
        registry,
        a.input.format.as_deref(),
        "; `zklens formats` lists them",
    )?;
    let opts = IngestOptions {
        text: TextOptions {
            format,
            tz,
            node_tz,
            max_line: a.max_line.max(1024),
        },
        nodes: match (&a.node, &a.node_from) {
            (Some(n), _) => NodeRule::Fixed(n.clone()),
            (None, Some(r)) => NodeRule::from_arg(r)?,
            (None, None) => NodeRule::Auto,
        },
        threads: a.threads,
    };
    let bar = if !a.quiet && io::stderr().is_terminal() {
        let b = indicatif::ProgressBar::new(0);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} {bytes}/{total_bytes} {bytes_per_sec} {wide_bar} {eta}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        Some(b)
    } else {
        None
    };
    let progress = |done: u64, total: u64| {
        if let Some(b) = &bar {
            b.set_length(total);
            b.set_position(done);
        }
    };
    let summary = ingest::ingest(&a.input.paths, dir, registry, &opts, &progress)
        .with_context(|| format!("ingesting into {}", dir.root().display()))?;
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    let mut err = io::stderr().lock();
    for f in &summary.files {
        let p = f.path.display();
        match &f.status {
            Status::Failed(e) => writeln!(err, "zklens: {e}")?,
            Status::Skipped(why) if !a.quiet => writeln!(err, "zklens: {p}: skipped: {why}")?,
            _ => {}
        }
        for n in &f.notices {
            writeln!(
                err,
                "zklens: {p}: at byte offset {}: {}",
                n.offset, n.message
            )?;
        }
    }
    if !a.quiet {
        let mut out = Out::new();
        let secs = summary.elapsed.as_secs_f64().max(1e-6);
        let indexed = summary
            .files
            .iter()
            .filter(|f| matches!(f.status, Status::Indexed { .. }))
            .count();
        let unchanged = summary
            .files
            .iter()
            .filter(|f| matches!(f.status, Status::Unchanged))
            .count();
        writeln!(
            out,
            "{} files indexed, {} unchanged, {} skipped, {} failed; {} lines, {} events, {:.1} MB in {:.2} s ({:.1} MB/s)",
            indexed,
            unchanged,
            summary.files.len() - indexed - unchanged - summary.failures(),
            summary.failures(),
            summary.lines,
            summary.events,
            summary.bytes as f64 / 1e6,
            secs,
            summary.bytes as f64 / 1e6 / secs
        )?;
        for f in &summary.files {
            if let Status::Indexed {
                format,
                from,
                events,
                ..
            } = &f.status
            {
                let resumed = if *from > 0 {
                    format!(" (from byte {from})")
                } else {
                    String::new()
                };
                let n = if format == "txnlog" {
                    "merged".to_string()
                } else {
                    format!("{events} events")
                };
                writeln!(
                    out,
                    "  {:<10} {:<22} {:>15}  {}{}",
                    f.node,
                    format,
                    n,
                    f.path.display(),
                    resumed
                )?;
            }
        }
        if !summary.kinds.is_empty() {
            writeln!(out, "events by kind:")?;
            let mut kinds: Vec<_> = summary.kinds.iter().collect();
            kinds.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
            for (k, n) in kinds {
                writeln!(out, "  {n:>8}  {k}")?;
            }
        }
        out.flush()?;
    }
    Ok(if summary.failures() > 0 { 2 } else { 0 })
}

/// `zklens parse`.
pub fn parse(a: &ParseArgs, registry: &Registry) -> Result<u8> {
    let opts = TextOptions {
        format: forced_format(registry, a.input.format.as_deref(), "")?,
        tz: a.input.tz.zone()?,
        ..TextOptions::default()
    };
    let format = a.output.format.events()?;
    let (files, errors) = zklens::source::discover(&a.input.paths);
    let mut failed = errors.len();
    for e in errors {
        eprintln!("zklens: {e}");
    }
    let start = std::time::Instant::now();
    let mut out = Out::new();
    let mut kinds: std::collections::BTreeMap<String, u64> = Default::default();
    let (mut bytes, mut lines, mut events) = (0u64, 0u64, 0u64);
    for f in &files {
        let gzip = match f.content {
            zklens::source::Content::Text { gzip } => gzip,
            zklens::source::Content::Empty => continue,
            other => {
                eprintln!("zklens: {}: skipped: {other:?}", f.path.display());
                continue;
            }
        };
        let mut emit = |e: &Event| -> zklens::Result<()> {
            *kinds.entry(e.kind.to_string()).or_default() += 1;
            if !a.stats {
                write_events(&mut out, std::slice::from_ref(e), format)
                    .map_err(|err| zklens::Error::io("<stdout>", err))?;
            }
            Ok(())
        };
        let read = zklens::pipeline::print::print_file(f, gzip, registry, &opts, &mut emit);
        // A failed write to standard output ends the command (a closed pipe, a full disk):
        // it is no fault of this file.
        out.check()?;
        match read {
            Ok(rep) => {
                bytes += rep.bytes;
                lines += rep.lines;
                events += rep.events;
                for n in rep.notices {
                    eprintln!(
                        "zklens: {}: at byte offset {}: {}",
                        f.path.display(),
                        n.offset,
                        n.message
                    );
                }
            }
            Err(e) => {
                failed += 1;
                eprintln!("zklens: {e}");
            }
        }
    }
    out.flush()?;
    if a.stats {
        let secs = start.elapsed().as_secs_f64().max(1e-9);
        writeln!(
            out,
            "{} files, {lines} lines, {events} events, {:.1} MB in {secs:.3} s: {:.1} MB/s, {:.0} lines/s",
            files.len(),
            bytes as f64 / 1e6,
            bytes as f64 / 1e6 / secs,
            lines as f64 / secs
        )?;
        for (k, n) in &kinds {
            writeln!(out, "  {n:>9}  {k}")?;
        }
        out.flush()?;
    }
    Ok(if failed > 0 {
        2
    } else if events > 0 {
        0
    } else {
        1
    })
}
