//! Rendering for people and programs: events as a table, JSON, JSON lines or CSV
//! ([`events`]); incidents as a one-line summary, a text post-mortem or one self-contained HTML
//! page ([`incident`], [`html`]); the incidents list and the clock-skew table ([`tables`]).
//!
//! Functions here take data (events, incidents, skews, rows) and a writer, never an index or a
//! query: the CLI's local and `--server` paths and the service render with the same code.

pub mod events;
pub mod html;
pub mod incident;
pub mod shiviz;
pub mod tables;

use std::io::{self, Write};

use serde::Serialize;

pub use events::{write_events, OutputFormat, Row};
pub use incident::{summary, text, text_with_skew};
pub use tables::{incidents_table, recipes_table, skew_table, IncidentLine};

/// Writes `value` as pretty-printed JSON and a newline (`-o json` of every command).
pub fn json(out: &mut dyn Write, value: &impl Serialize) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, value).map_err(io::Error::from)?;
    out.write_all(b"\n")
}
