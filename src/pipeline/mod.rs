//! Pipelines: sources driven into sinks. Drivers of the same seam ([`Source`] → [`Sink`],
//! checkpoints as [`CheckpointDelta`](crate::checkpoint::CheckpointDelta)s applied with the
//! events):
//!
//! - [`batch`]: `zklens ingest` — plan files from the committed checkpoints, read them on every
//!   core, one commit at the end;
//! - [`service`]: `zklens serve` — collector threads, one per source, send batches over a
//!   bounded channel to one writer, which commits events with exactly the checkpoints that
//!   cover them.
//!
//! - [`print`]: `zklens parse` — each file into a printing sink;
//!
//! and [`run`], the smallest driver: one source into one sink, committed at the end (tests,
//! examples, [`print`]).

pub mod batch;
pub mod print;
pub mod service;

use crate::error::Result;
use crate::parser::Notice;
use crate::sink::Sink;
use crate::source::{Progress, Source};

/// What [`run`] did.
#[derive(Debug, Default)]
pub struct RunReport {
    /// Batches sent.
    pub batches: u64,
    /// Events sent.
    pub events: u64,
    /// Notices of the source.
    pub notices: Vec<Notice>,
}

/// Drives `source` into `sink` until the source is done or idle, then commits. A batch the
/// sink refuses (its delta does not fit) stops the run with that error, and nothing of the run
/// is committed.
pub fn run(source: &mut dyn Source, sink: &mut dyn Sink) -> Result<RunReport> {
    let mut report = RunReport::default();
    loop {
        let progress = source.poll(&mut |mut b| {
            report.batches += 1;
            report.events += b.events.len() as u64;
            report.notices.append(&mut b.notices);
            sink.send(&b)
        });
        match progress.map_err(unwrap_sink)? {
            Progress::Busy => continue,
            Progress::Idle | Progress::Done => break,
        }
    }
    source.finish(&mut |b| sink.send(&b)).map_err(unwrap_sink)?;
    sink.commit()?;
    Ok(report)
}

/// A sink's error as the sink raised it (sources wrap it to keep it apart from their own).
fn unwrap_sink(e: crate::Error) -> crate::Error {
    match e {
        crate::Error::Sink(inner) => *inner,
        other => other,
    }
}
