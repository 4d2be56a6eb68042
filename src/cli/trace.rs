//! `zklens trace session|zxid|incident`: a distributed trace built from what any backend
//! answers (an index here, a lake, or a running service with `--server`), printed as OTLP/JSON
//! or a ShiViz log, or sent to an OTLP/HTTP endpoint.

use std::io::Write;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use zklens::app::{self, trace, Filter, Window};
use zklens::event::parse_id;
use zklens::render;

use super::ask::backend;
use super::flags::Format;
use super::out::Out;
use super::{Global, TraceArgs, TraceCmd, TraceIncidentArgs};

/// `zklens trace ...`.
pub fn run(g: &Global, cmd: &TraceCmd) -> Result<u8> {
    match cmd {
        TraceCmd::Session(a) => id_trace(g, a, true),
        TraceCmd::Zxid(a) => id_trace(g, a, false),
        TraceCmd::Incident(a) => incident(g, a),
    }
}

fn id_trace(g: &Global, a: &TraceArgs, session: bool) -> Result<u8> {
    let what = if session { "session id" } else { "zxid" };
    let id = parse_id(&a.id).with_context(|| format!("{:?} is not a {what}", a.id))?;
    let b = backend(g, &[])?;
    let all = Filter::default();
    let (events, req) = if session {
        let ans = b.session(id, &all)?;
        let req = trace::session(id, &ans.found.events);
        (ans.found.events.len(), req)
    } else {
        let ans = b.zxid(id, &all)?;
        let req = trace::zxid(id, &ans.found.events);
        (ans.found.events.len(), req)
    };
    if events == 0 {
        eprintln!("zklens: no events name {what} {}", a.id);
        return Ok(1);
    }
    emit(&req, a.otlp.as_deref())
}

fn incident(g: &Global, a: &TraceIncidentArgs) -> Result<u8> {
    let b = backend(g, &a.queries.dirs)?;
    let list = b.incidents(&Window::default())?;
    let inc = app::find_incident(list.into_iter().map(|e| e.incident).collect(), &a.id)?;
    if a.output.format == Format::Shiviz {
        if a.otlp.is_some() {
            bail!("--otlp sends OTLP; -o shiviz writes a ShiViz log: choose one");
        }
        let mut out = Out::new();
        write!(out, "{}", render::shiviz::render(&inc))?;
        out.flush()?;
        return Ok(0);
    }
    emit(&trace::incident(&inc), a.otlp.as_deref())
}

/// Prints the trace as OTLP/JSON, or sends it as protobuf to `otlp` (`/v1/traces` added unless
/// the URL names a path).
fn emit(
    req: &opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest,
    otlp: Option<&str>,
) -> Result<u8> {
    let Some(url) = otlp else {
        let mut out = Out::new();
        writeln!(out, "{}", trace::to_json(req))?;
        out.flush()?;
        return Ok(0);
    };
    trace::send(url, req, Duration::from_secs(30)).map_err(anyhow::Error::msg)?;
    eprintln!(
        "zklens: {} spans sent to {}",
        trace::span_count(req),
        trace::traces_url(url)
    );
    Ok(0)
}
