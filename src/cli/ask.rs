//! The commands that ask questions of an index: `query`, `run`, `session`, `zxid`,
//! `incidents`, `incident`, `skew`, `sources`. Each asks a [`Backend`] (the data directory, or
//! a running service with `--server`) and prints the answer through the same code whichever
//! answered.

use std::io::Write;

use anyhow::{Context, Result};

use zklens::app::{self, Backend, Found, Local, Window};
use zklens::checkpoint::percent;
use zklens::event::parse_id;
use zklens::query;
use zklens::remote::Remote;
use zklens::render::{self, write_events, IncidentLine};

use super::flags::{EventOpts, Format};
use super::out::Out;
use super::{
    Global, IdArgs, IncidentArgs, IncidentsArgs, QueryArgs, RecipesArgs, RunArgs, SkewArgs,
};

/// What answers: the service of `--server`, else the index in the data directory (opened
/// now), with the incident definitions of `queries`.
pub(super) fn backend(g: &Global, queries: &[std::path::PathBuf]) -> Result<Box<dyn Backend>> {
    #[cfg(feature = "lake")]
    if let Some(dir) = &g.lake {
        return Ok(Box::new(zklens::app::Lake::open(dir, queries.to_vec())?));
    }
    Ok(match &g.server {
        Some(url) => Box::new(Remote::new(url, g.token()?)),
        None => Box::new(Local::open(&g.data_dir(), queries.to_vec())?),
    })
}

/// `zklens query`.
pub fn query(g: &Global, a: &QueryArgs) -> Result<u8> {
    let b = backend(g, &a.queries.dirs)?;
    let found = b.search(&a.query, &a.opts.filter()?)?;
    print_found(found, &a.opts, None)
}

/// `zklens run`: a saved query, or the list of them.
pub fn run(g: &Global, a: &RunArgs) -> Result<u8> {
    let saved = query::saved_queries(&a.queries.dirs)?;
    let Some(name) = &a.name else {
        let mut out = Out::new();
        for q in &saved {
            let p: Vec<String> = q.params.iter().map(|p| format!("{p}=...")).collect();
            writeln!(out, "{:<14} {:<16} {}", q.name, p.join(" "), q.description)?;
        }
        out.flush()?;
        return Ok(0);
    };
    let q = saved
        .iter()
        .find(|q| &q.name == name)
        .with_context(|| format!("no saved query {name:?}; `zklens run` lists them"))?;
    let text = query::fill(q, &a.params)?;
    let b = backend(g, &a.queries.dirs)?;
    let found = b.search(&text, &a.opts.filter()?)?;
    print_found(found, &a.opts, None)
}

/// `zklens session`: the session's life, then its events.
pub fn session(g: &Global, a: &IdArgs) -> Result<u8> {
    let id = parse_id(&a.id).with_context(|| format!("{:?} is not a session id", a.id))?;
    let answer = backend(g, &[])?.session(id, &a.opts.filter()?)?;
    print_found(answer.found, &a.opts, answer.summary)
}

/// `zklens zxid`: the transaction's events.
pub fn zxid(g: &Global, a: &IdArgs) -> Result<u8> {
    let id = parse_id(&a.id).with_context(|| format!("{:?} is not a zxid", a.id))?;
    let z = backend(g, &[])?.zxid(id, &a.opts.filter()?)?;
    let head = format!(
        "zxid {} (epoch {}, counter {}): ",
        z.zxid, z.epoch, z.counter
    );
    print_found(z.found, &a.opts, Some(head))
}

/// Prints a search's result the way the query commands do (`head` before a table); the exit
/// status says whether anything matched.
fn print_found(found: Found, o: &EventOpts, head: Option<String>) -> Result<u8> {
    let Found {
        total,
        events,
        truncated,
    } = found;
    let format = o.output.format.events()?;
    let code = if total > 0 { 0 } else { 1 };
    let mut out = Out::new();
    if o.count {
        writeln!(out, "{total}")?;
        out.flush()?;
        return Ok(code);
    }
    let table = o.output.format == Format::Table;
    if let (true, Some(h)) = (table, head) {
        let mut nodes: Vec<&str> = events.iter().map(|e| &*e.node).collect();
        nodes.sort_unstable();
        nodes.dedup();
        write!(out, "{h}")?;
        writeln!(out, "{} events on {}", total, nodes.join(", "))?;
    }
    if !(events.is_empty() && table) {
        write_events(&mut out, &events, format)?;
    }
    out.flush()?;
    if truncated {
        eprintln!(
            "zklens: the service cut its answer at {} of {} matching events (its max_events / max_answer_bytes budget); narrow the query or the window",
            events.len(),
            total
        );
    } else if total > events.len() {
        eprintln!(
            "zklens: showing the first {} of {} matching events (--limit)",
            events.len(),
            total
        );
    }
    Ok(code)
}

/// `zklens incidents`.
pub fn incidents(g: &Global, a: &IncidentsArgs) -> Result<u8> {
    let window = a.window.window()?;
    let list = backend(g, &a.queries.dirs)?.incidents(&window)?;
    let mut out = Out::new();
    if a.output.format == Format::Json {
        let incidents: Vec<_> = list.iter().map(|e| &e.incident).collect();
        render::json(&mut out, &incidents)?;
    } else {
        let rows: Vec<IncidentLine<'_>> = list
            .iter()
            .map(|e| IncidentLine {
                id: &e.incident.id,
                kind: e.incident.kind().as_str(),
                started_at: &e.incident.started_at,
                summary: &e.summary,
            })
            .collect();
        render::incidents_table(&mut out, &rows)?;
    }
    out.flush()?;
    Ok(if list.is_empty() { 1 } else { 0 })
}

/// `zklens incident`.
pub fn incident(g: &Global, a: &IncidentArgs) -> Result<u8> {
    let b = backend(g, &a.queries.dirs)?;
    let text = match a.output.format {
        Format::Html => b.incident_html(&a.id)?,
        Format::Json => {
            // From the list: the JSON needs no post-mortem text (nor the skews it reads).
            let list = b.incidents(&Window::default())?;
            let inc = app::find_incident(list.into_iter().map(|e| e.incident).collect(), &a.id)?;
            let mut j = serde_json::to_string_pretty(&inc)?;
            j.push('\n');
            j
        }
        _ => b.incident(&a.id)?.text,
    };
    let mut out = Out::new();
    write!(out, "{text}")?;
    out.flush()?;
    Ok(0)
}

/// `zklens skew`.
pub fn skew(g: &Global, a: &SkewArgs) -> Result<u8> {
    let skews = backend(g, &[])?.skew()?;
    let mut out = Out::new();
    if a.output.format == Format::Json {
        render::json(&mut out, &skews)?;
    } else {
        render::skew_table(&mut out, &skews)?;
    }
    out.flush()?;
    Ok(if skews.is_empty() { 1 } else { 0 })
}

/// `zklens recipes [PATH]`.
pub fn recipes(g: &Global, a: &RecipesArgs) -> Result<u8> {
    let mut list = backend(g, &a.queries.dirs)?.recipes()?;
    if let Some(p) = &a.path {
        let p = p.trim_end_matches('/');
        list.retain(|t| t.parent == p || t.parent.starts_with(&format!("{p}/")));
    }
    // --since/--until: the holdings that overlap the window.
    let w = a.window.window()?;
    let now = zklens::time::now_nanos();
    let bound = |t: &Option<String>| {
        t.as_deref()
            .map(|t| zklens::time::parse_time(t, w.tz, now))
            .transpose()
    };
    let (since, until) = (bound(&w.since)?, bound(&w.until)?);
    for t in &mut list {
        t.holdings.retain(|h| {
            since.is_none_or(|s| h.until_ts.is_none_or(|u| u >= s))
                && until.is_none_or(|u| h.from_ts < u)
        });
    }
    list.retain(|t| !t.holdings.is_empty());
    let mut out = Out::new();
    if a.output.format == Format::Json {
        render::json(&mut out, &list)?;
    } else {
        render::recipes_table(&mut out, &list)?;
    }
    out.flush()?;
    Ok(if list.is_empty() { 1 } else { 0 })
}

/// `zklens sources`.
pub fn sources(g: &Global) -> Result<u8> {
    let idx = backend(g, &[])?.indexed()?;
    let mut out = Out::new();
    writeln!(out, "{} events indexed", idx.events)?;
    let share = |s: Option<f64>| s.map_or_else(|| "-".to_string(), percent);
    for s in &idx.sources {
        let (t, c) = s.coverage.map_or_else(
            || ("-".to_string(), "-".to_string()),
            |c| (share(c.timestamped_share()), share(c.classified_share())),
        );
        writeln!(
            out,
            "  {:<10} {:<22} {:>8} events  {:>10} bytes  {:>6} timestamped  {:>6} classified  {}",
            s.node, s.format, s.events, s.offset, t, c, s.path
        )?;
    }
    out.flush()?;
    Ok(if idx.sources.is_empty() { 1 } else { 0 })
}
