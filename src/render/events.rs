//! Events for people and programs: an aligned table, JSON, JSON lines, CSV.

use std::io::{self, Write};

use serde::Serialize;

use crate::event::{hex_id, Event};
use crate::time::{rfc3339, short};

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// Aligned columns, first line of each message.
    Table,
    /// One JSON array.
    Json,
    /// One JSON object per line.
    Jsonl,
    /// Comma-separated values with a header.
    Csv,
}

/// One event as rendered in JSON, JSON lines and CSV.
#[derive(Debug, Clone, Serialize)]
pub struct Row<'a> {
    /// RFC 3339 UTC timestamp, if known.
    pub ts: Option<String>,
    /// Node.
    pub node: &'a str,
    /// Source file.
    pub source: &'a str,
    /// Byte offset in the source.
    pub offset: u64,
    /// Line number in the source.
    pub line: u64,
    /// Kind.
    pub kind: &'a str,
    /// Level.
    pub level: Option<&'static str>,
    /// Session id as `0x` hex.
    pub session: Option<String>,
    /// zxid as `0x` hex.
    pub zxid: Option<String>,
    /// Epoch.
    pub epoch: Option<u64>,
    /// Server id named by the line.
    pub server: Option<u64>,
    /// Leader id named by the line.
    pub leader: Option<u64>,
    /// Writer's myid.
    pub myid: Option<u64>,
    /// Peer address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer: Option<&'a str>,
    /// znode path.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<&'a str>,
    /// State word.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<&'a str>,
    /// Duration in ms.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// Timeout in ms.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// Thread.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thread: Option<&'a str>,
    /// Logger.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logger: Option<&'a str>,
    /// Further paths (lost ephemerals, multi sub-op paths).
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    pub paths: &'a [String],
    /// Servers whose txn log holds this record.
    #[serde(skip_serializing_if = "<[std::sync::Arc<str>]>::is_empty")]
    pub replicas: &'a [std::sync::Arc<str>],
    /// The whole message (continuation lines included).
    pub message: &'a str,
}

impl<'a> Row<'a> {
    /// The row for an event.
    pub fn of(e: &'a Event) -> Row<'a> {
        let a = &e.attrs;
        Row {
            ts: e.ts.map(rfc3339),
            node: &e.node,
            source: &e.source,
            offset: e.offset,
            line: e.line,
            kind: &e.kind,
            level: e.level.map(|l| l.as_str()),
            session: a.session.map(hex_id),
            zxid: a.zxid.map(hex_id),
            epoch: a.epoch,
            server: a.server,
            leader: a.leader,
            myid: e.myid,
            peer: a.peer.as_deref(),
            path: a.path.as_deref(),
            state: a.state.as_deref(),
            duration_ms: a.duration_ms,
            timeout_ms: a.timeout_ms,
            thread: e.thread.as_deref(),
            logger: e.logger.as_deref(),
            paths: &e.paths,
            replicas: &e.replicas,
            message: &e.message,
        }
    }
}

fn json_err(e: serde_json::Error) -> io::Error {
    // Keeps the kind of an underlying I/O error (a closed pipe must stay a BrokenPipe).
    io::Error::from(e)
}

/// Writes events in a format.
pub fn write_events(out: &mut dyn Write, events: &[Event], fmt: OutputFormat) -> io::Result<()> {
    match fmt {
        OutputFormat::Jsonl => {
            for e in events {
                serde_json::to_writer(&mut *out, &Row::of(e)).map_err(json_err)?;
                out.write_all(b"\n")?;
            }
        }
        OutputFormat::Json => {
            let rows: Vec<Row<'_>> = events.iter().map(Row::of).collect();
            serde_json::to_writer_pretty(&mut *out, &rows).map_err(json_err)?;
            out.write_all(b"\n")?;
        }
        OutputFormat::Csv => {
            writeln!(
                out,
                "ts,node,source,offset,kind,level,session,zxid,epoch,message"
            )?;
            for e in events {
                let r = Row::of(e);
                let cells = [
                    r.ts.unwrap_or_default(),
                    r.node.to_string(),
                    r.source.to_string(),
                    r.offset.to_string(),
                    r.kind.to_string(),
                    r.level.unwrap_or("").to_string(),
                    r.session.unwrap_or_default(),
                    r.zxid.unwrap_or_default(),
                    r.epoch.map(|x| x.to_string()).unwrap_or_default(),
                    r.message.to_string(),
                ];
                let line: Vec<String> = cells.iter().map(|c| csv_cell(c)).collect();
                writeln!(out, "{}", line.join(","))?;
            }
        }
        OutputFormat::Table => {
            let nw = events
                .iter()
                .map(|e| e.node.len())
                .max()
                .unwrap_or(4)
                .max(4);
            let kw = events
                .iter()
                .map(|e| e.kind.len())
                .max()
                .unwrap_or(4)
                .max(4);
            writeln!(
                out,
                "{:<23}  {:<nw$}  {:<kw$}  {:<5}  MESSAGE",
                "TIME (UTC)", "NODE", "KIND", "LEVEL"
            )?;
            for e in events {
                let ts = e.ts.map(short).unwrap_or_else(|| "-".into());
                let more = e.message.matches('\n').count();
                let head = e.headline();
                let tail = if more > 0 {
                    format!("  [+{more} lines]")
                } else {
                    String::new()
                };
                writeln!(
                    out,
                    "{ts:<23}  {:<nw$}  {:<kw$}  {:<5}  {head}{tail}",
                    e.node,
                    e.kind,
                    e.level.map(|l| l.as_str()).unwrap_or("-"),
                )?;
            }
        }
    }
    Ok(())
}

fn csv_cell(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Attrs;
    use std::sync::Arc;

    fn ev() -> Event {
        Event {
            ts: Some(1_764_021_749_123_000_000),
            node: Arc::from("zk3"),
            myid: Some(3),
            source: Arc::from("zk3/logs/zookeeper.log"),
            offset: 10,
            line: 2,
            level: Some(crate::event::Level::Info),
            thread: None,
            logger: Some("ZooKeeperServer".into()),
            message: "Expiring session 0x3000002f45e0000, timeout of 4000ms exceeded".into(),
            kind: Arc::from("session.expired"),
            attrs: Attrs {
                session: Some(0x3000002f45e0000),
                ..Attrs::default()
            },
            paths: vec![],
            replicas: vec![],
            ensemble: crate::event::default_ensemble(),
        }
    }

    #[test]
    fn jsonl_has_hex_ids_and_rfc3339() {
        let mut b = Vec::new();
        write_events(&mut b, &[ev()], OutputFormat::Jsonl).expect("write");
        let v: serde_json::Value = serde_json::from_slice(&b).expect("json");
        assert_eq!(v["session"], "0x3000002f45e0000");
        assert_eq!(v["ts"], "2025-11-24T22:02:29.123Z");
        assert_eq!(v["zxid"], serde_json::Value::Null);
        assert_eq!(v["offset"], 10);
    }

    #[test]
    fn csv_quotes_commas() {
        let mut b = Vec::new();
        write_events(&mut b, &[ev()], OutputFormat::Csv).expect("write");
        let s = String::from_utf8(b).expect("utf8");
        assert!(s.contains("\"Expiring session 0x3000002f45e0000, timeout of 4000ms exceeded\""));
    }
}
