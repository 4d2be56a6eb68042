//! Sinks: where events go. A [`Sink`] receives [`Batch`]es — events together with the
//! [`CheckpointDelta`] that covers them — and makes them durable on [`Sink::commit`], events and
//! checkpoints together or neither.
//!
//! Implementations: the index ([`crate::index::IndexSink`]), the printer behind `zklens parse`
//! ([`WriteSink`], over any per-event closure, so the renderer stays above this layer), the
//! service's live incident detector (`serve::LiveDetector`, told after every commit), and
//! [`Tee`], which hands each batch to two sinks.

use crate::checkpoint::{CheckpointDelta, Checkpoints};
use crate::error::Result;
use crate::event::Event;
use crate::parser::Notice;

/// Events from one source, and how far they move it: what a source
/// (`crate::source::Source`) emits and a [`Sink`] takes. It is defined here, with the trait
/// that takes it, so sinks need know nothing of sources.
#[derive(Debug, Clone, Default)]
pub struct Batch {
    /// The events, in source order.
    pub events: Vec<Event>,
    /// The source's checkpoint delta: where it stood before this batch and where it stands
    /// after it (None: the batch moves no per-source checkpoint — a part of a file whose
    /// checkpoint comes with its last batch, or transactions merged from several servers'
    /// txn logs, which move `txn_ranges` instead).
    pub delta: Option<CheckpointDelta>,
    /// zxid ranges (inclusive) the batch's transactions cover.
    pub txn_ranges: Vec<(u64, u64)>,
    /// The ensemble of `txn_ranges` (None: [`crate::event::DEFAULT_ENSEMBLE`]).
    pub txn_ensemble: Option<std::sync::Arc<str>>,
    /// Bytes of the source the batch consumed (for metrics).
    pub bytes: u64,
    /// Things worth telling the user about the source, each naming the byte offset (the
    /// delta's key names the file).
    pub notices: Vec<Notice>,
}

impl Batch {
    /// The ensemble of the batch's `txn_ranges`.
    pub fn txn_ensemble(&self) -> &str {
        self.txn_ensemble
            .as_deref()
            .unwrap_or(crate::event::DEFAULT_ENSEMBLE)
    }

    /// A batch of `events` moving its source by `delta`.
    pub fn new(events: Vec<Event>, delta: CheckpointDelta) -> Batch {
        Batch {
            events,
            delta: Some(delta),
            ..Batch::default()
        }
    }
}

/// Receives events and checkpoints.
pub trait Sink {
    /// Takes a batch: its events, and its checkpoint delta applied to the sink's pending set.
    /// A delta that does not start where its source stands is refused ([`Error::Checkpoint`])
    /// and nothing of the batch is taken.
    fn send(&mut self, batch: &Batch) -> Result<()>;

    /// Makes everything sent so far durable together with the pending checkpoints.
    fn commit(&mut self) -> Result<()>;

    /// Where every source stands as far as this sink was sent (committed or not).
    fn checkpoints(&self) -> &Checkpoints;
}

/// A sink handing every event to a closure (the printer of `zklens parse` passes one that
/// renders the event); checkpoints are kept in memory only.
pub struct WriteSink<F> {
    write: F,
    checkpoints: Checkpoints,
}

impl<F> std::fmt::Debug for WriteSink<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteSink")
            .field("checkpoints", &self.checkpoints)
            .finish()
    }
}

impl<F: FnMut(&Event) -> Result<()>> WriteSink<F> {
    /// A sink calling `write` for each event, in order.
    pub fn new(write: F) -> WriteSink<F> {
        WriteSink {
            write,
            checkpoints: Checkpoints::default(),
        }
    }
}

impl<F: FnMut(&Event) -> Result<()>> Sink for WriteSink<F> {
    fn send(&mut self, batch: &Batch) -> Result<()> {
        if let Some(d) = &batch.delta {
            self.checkpoints.check(d)?;
        }
        for e in &batch.events {
            (self.write)(e)?;
        }
        if let Some(d) = &batch.delta {
            self.checkpoints.advance(d.clone());
        }
        self.checkpoints
            .add_txn_ranges_in(batch.txn_ensemble(), &batch.txn_ranges);
        Ok(())
    }

    fn commit(&mut self) -> Result<()> {
        Ok(())
    }

    fn checkpoints(&self) -> &Checkpoints {
        &self.checkpoints
    }
}

/// Two sinks fed the same batches; committed in order (the first, then the second). Its
/// checkpoints are the first sink's.
#[derive(Debug)]
pub struct Tee<A, B> {
    /// The first sink (the one whose checkpoints count).
    pub first: A,
    /// The second sink.
    pub second: B,
}

impl<A: Sink, B: Sink> Sink for Tee<A, B> {
    fn send(&mut self, batch: &Batch) -> Result<()> {
        self.first.send(batch)?;
        self.second.send(batch)
    }

    fn commit(&mut self) -> Result<()> {
        self.first.commit()?;
        self.second.commit()
    }

    fn checkpoints(&self) -> &Checkpoints {
        self.first.checkpoints()
    }
}
