//! `zklens ingest` (the batch pipeline, with its progress bar and summary) and `zklens parse`
//! (parsing without indexing).

use std::io::{self, IsTerminal, Write};

use anyhow::{Context, Result};

use zklens::checkpoint::{percent, Coverage};
use zklens::event::Event;
use zklens::index::DataDir;
use zklens::parser::Notice;
use zklens::parser::Registry;
use zklens::pipeline::batch::{self as ingest, IngestOptions, Status};
use zklens::render::write_events;
use zklens::source::text::TextOptions;
use zklens::source::NodeRule;

use super::out::Out;
use super::{IngestArgs, InputArgs, ParseArgs};

/// The format `--format` names, if any.
/// The format `--format NAME` or `--layout PATTERN` forces, if either is given.
fn forced_format(
    registry: &Registry,
    input: &InputArgs,
    hint: &str,
) -> Result<Option<std::sync::Arc<zklens::parser::format::Format>>> {
    if let Some(l) = &input.layout {
        return Ok(Some(
            registry
                .from_layout(l, input.layout_time.as_deref())
                .context("--layout")?,
        ));
    }
    input
        .format
        .as_deref()
        .map(|n| {
            registry
                .get(n)
                .with_context(|| format!("unknown format {n:?}{hint}"))
        })
        .transpose()
}

/// One file's line in a summary.
struct Row {
    node: String,
    format: String,
    events: String,
    coverage: Option<Coverage>,
    path: String,
}

/// A node with where its name came from, when that is not simply its directory.
fn node_label(node: &str, note: Option<String>) -> String {
    match note {
        Some(n) => format!("{node} ({n})"),
        None => node.to_string(),
    }
}

/// A share for people, `-` when there is none.
fn shown(share: Option<f64>) -> String {
    share.map_or_else(|| "-".to_string(), percent)
}

/// Files as a table: node, format, events, timestamped and classified shares, path.
fn write_rows(out: &mut impl Write, rows: &[Row]) -> io::Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let w = rows.iter().map(|r| r.node.len()).max().unwrap_or(0).max(4);
    let f = rows
        .iter()
        .map(|r| r.format.len())
        .max()
        .unwrap_or(0)
        .max(6);
    writeln!(
        out,
        "  {:<w$}  {:<f$}  {:>8}  {:>11}  {:>10}  file",
        "node", "format", "events", "timestamped", "classified"
    )?;
    for r in rows {
        let (t, c) = r.coverage.map_or_else(
            || ("-".to_string(), "-".to_string()),
            |c| (shown(c.timestamped_share()), shown(c.classified_share())),
        );
        writeln!(
            out,
            "  {:<w$}  {:<f$}  {:>8}  {:>11}  {:>10}  {}",
            r.node, r.format, r.events, t, c, r.path
        )?;
    }
    Ok(())
}

/// Warns about a file whose entries mostly have no timestamp: its format was not understood.
fn warn_coverage(
    err: &mut impl Write,
    path: &std::path::Path,
    format: &str,
    c: &Coverage,
    first_untimed: Option<&Notice>,
) -> io::Result<()> {
    if !c.poorly_timestamped() {
        return Ok(());
    }
    let shown_line = first_untimed.map_or_else(String::new, |n| {
        format!(
            "; the first without one, at byte offset {}: {}",
            n.offset, n.message
        )
    });
    writeln!(
        err,
        "zklens: warning: {}: only {} of {} entries have a timestamp with format {format} (its layout was not understood){shown_line}",
        path.display(),
        shown(c.timestamped_share()),
        c.entries,
    )
}

/// How `--node` / `--node-from` name nodes (else by the paths and myid evidence).
fn node_rule(input: &InputArgs) -> Result<NodeRule> {
    Ok(match (&input.node, &input.node_from) {
        (Some(n), _) => NodeRule::Fixed(n.clone()),
        (None, Some(r)) => NodeRule::from_arg(r)?,
        (None, None) => NodeRule::Auto,
    })
}

/// `--ensemble`, checked.
fn ensemble_of(input: &InputArgs) -> Result<Option<String>> {
    match &input.ensemble {
        Some(name) => {
            zklens::event::check_ensemble_name(name)
                .map_err(|e| anyhow::anyhow!("--ensemble: {e}"))?;
            Ok(Some(name.clone()))
        }
        None => Ok(None),
    }
}

/// `zklens ingest`.
pub fn ingest(a: &IngestArgs, dir: &DataDir, registry: &Registry) -> Result<u8> {
    let (tz, node_tz) = a.input.tz.per_node();
    let format = forced_format(registry, &a.input, "; `zklens formats` lists them")?;
    let opts = IngestOptions {
        text: TextOptions {
            format,
            tz,
            node_tz,
            max_line: a.max_line.max(1024),
        },
        nodes: node_rule(&a.input)?,
        ensemble: ensemble_of(&a.input)?,
        threads: a.threads,
        max_record_len: a.max_record_len,
        max_snapshot_sessions: a.max_snapshot_sessions,
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
        // Not understood: said even with -q (a warning, not progress).
        if let Status::Indexed {
            format,
            coverage: Some(c),
            first_untimed,
            ..
        } = &f.status
        {
            warn_coverage(&mut err, &f.path, format, c, first_untimed.as_ref())?;
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
        let rows: Vec<Row> = summary
            .files
            .iter()
            .filter_map(|f| {
                let Status::Indexed {
                    format,
                    from,
                    events,
                    coverage,
                    ..
                } = &f.status
                else {
                    return None;
                };
                let mut path = f.path.display().to_string();
                if *from > 0 {
                    path.push_str(&format!(" (from byte {from})"));
                }
                Some(Row {
                    node: node_label(&f.node, f.node_origin.note()),
                    format: format.clone(),
                    events: if format == "txnlog" {
                        "merged".to_string()
                    } else {
                        events.to_string()
                    },
                    coverage: *coverage,
                    path,
                })
            })
            .collect();
        write_rows(&mut out, &rows)?;
        if summary.coverage.entries > 0 {
            writeln!(
                out,
                "text entries: {} timestamped, {} classified beyond `log`",
                shown(summary.coverage.timestamped_share()),
                shown(summary.coverage.classified_share())
            )?;
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
        format: forced_format(registry, &a.input, "")?,
        tz: a.input.tz.zone()?,
        ..TextOptions::default()
    };
    let format = a.output.format.events()?;
    let (files, errors) = zklens::source::discover_in(
        &a.input.paths,
        &node_rule(&a.input)?,
        ensemble_of(&a.input)?.as_deref(),
    );
    let mut failed = errors.len();
    for e in errors {
        eprintln!("zklens: {e}");
    }
    let start = std::time::Instant::now();
    let mut out = Out::new();
    let mut kinds: std::collections::BTreeMap<std::sync::Arc<str>, u64> = Default::default();
    let (mut bytes, mut lines, mut events) = (0u64, 0u64, 0u64);
    let mut coverage = Coverage::default();
    let mut rows: Vec<Row> = Vec::new();
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
            // Counted by the kind's shared name: no allocation per event.
            match kinds.get_mut(&*e.kind) {
                Some(n) => *n += 1,
                None => {
                    kinds.insert(e.kind.clone(), 1);
                }
            }
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
                coverage = coverage.plus(rep.coverage);
                for n in &rep.notices {
                    eprintln!(
                        "zklens: {}: at byte offset {}: {}",
                        f.path.display(),
                        n.offset,
                        n.message
                    );
                }
                warn_coverage(
                    &mut io::stderr().lock(),
                    &f.path,
                    &rep.format,
                    &rep.coverage,
                    rep.first_untimed.as_ref(),
                )?;
                rows.push(Row {
                    node: node_label(&f.node, f.node_origin.note()),
                    format: rep.format,
                    events: rep.events.to_string(),
                    coverage: Some(rep.coverage),
                    path: f.path.display().to_string(),
                });
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
        write_rows(&mut out, &rows)?;
        writeln!(
            out,
            "{} files, {lines} lines, {events} events ({} timestamped, {} classified beyond `log`), {:.1} MB in {secs:.3} s: {:.1} MB/s, {:.0} lines/s",
            files.len(),
            shown(coverage.timestamped_share()),
            shown(coverage.classified_share()),
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
