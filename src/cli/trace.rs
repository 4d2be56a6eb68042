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
    let url = traces_url(url);
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(30)))
        .http_status_as_error(false)
        .build()
        .into();
    let mut resp = agent
        .post(&url)
        .header("Content-Type", "application/x-protobuf")
        .send(&trace::to_protobuf(req)[..])
        .with_context(|| format!("sending the trace to {url}"))?;
    let status = resp.status().as_u16();
    if !(200..300).contains(&status) {
        let body = resp
            .body_mut()
            .with_config()
            .limit(4096)
            .read_to_string()
            .unwrap_or_default();
        bail!("{url} answered {status}: {}", body.trim());
    }
    let spans: usize = req
        .resource_spans
        .iter()
        .flat_map(|r| &r.scope_spans)
        .map(|s| s.spans.len())
        .sum();
    eprintln!("zklens: {spans} spans sent to {url}");
    Ok(0)
}

/// `http://HOST:4318` → `http://HOST:4318/v1/traces`; a URL with a path is taken as it is.
fn traces_url(url: &str) -> String {
    let u = url.trim_end_matches('/');
    let after_scheme = u.split_once("://").map_or(u, |(_, r)| r);
    if after_scheme.contains('/') {
        u.to_string()
    } else {
        format!("{u}/v1/traces")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_traces_path_is_added_to_a_bare_endpoint() {
        assert_eq!(traces_url("http://h:4318"), "http://h:4318/v1/traces");
        assert_eq!(traces_url("http://h:4318/"), "http://h:4318/v1/traces");
        assert_eq!(
            traces_url("https://h/otlp/v1/traces"),
            "https://h/otlp/v1/traces"
        );
    }
}
