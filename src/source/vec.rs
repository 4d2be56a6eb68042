//! [`VecSource`]: events held in memory, handed out in batches with checkpoint deltas, for tests
//! and for programs that make their own events. Its position is the number of events handed out
//! (`offset` and `line` both count events).

use crate::checkpoint::{Checkpoint, CheckpointDelta};
use crate::error::Result;
use crate::event::Event;

use super::{sink_error, Batch, Progress, Source};

/// Events in memory as a [`Source`].
#[derive(Debug, Clone)]
pub struct VecSource {
    events: Vec<Event>,
    at: Checkpoint,
    batch: usize,
}

impl VecSource {
    /// A source keyed `key` handing out `events`, `batch` at a time (at least one).
    pub fn new(key: impl Into<String>, events: Vec<Event>, batch: usize) -> VecSource {
        let mut at = Checkpoint::start(key);
        if let Some(e) = events.first() {
            at.node = e.node.to_string();
        }
        at.format = "memory".into();
        VecSource {
            events,
            at,
            batch: batch.max(1),
        }
    }

    /// Continues from `cp` (a checkpoint committed earlier for this key): the events before
    /// its offset are not handed out again.
    pub fn resume(mut self, cp: Option<&Checkpoint>) -> VecSource {
        if let Some(cp) = cp.filter(|c| c.path == self.at.path) {
            self.at = cp.clone();
        }
        self
    }

    /// Where it stands (everything before was handed out).
    pub fn checkpoint(&self) -> &Checkpoint {
        &self.at
    }
}

impl Source for VecSource {
    fn key(&self) -> &str {
        &self.at.path
    }

    fn poll(&mut self, emit: &mut dyn FnMut(Batch) -> Result<()>) -> Result<Progress> {
        let from = usize::try_from(self.at.offset).unwrap_or(usize::MAX);
        if from >= self.events.len() {
            return Ok(Progress::Done);
        }
        let to = (from + self.batch).min(self.events.len());
        let events = self.events[from..to].to_vec();
        let mut next = self.at.clone();
        next.offset = to as u64;
        next.line = to as u64;
        next.events += events.len() as u64;
        let delta = CheckpointDelta::new(Some(self.at.clone()), next.clone());
        emit(Batch::new(events, delta)).map_err(sink_error)?;
        self.at = next;
        Ok(if to == self.events.len() {
            Progress::Done
        } else {
            Progress::Busy
        })
    }
}
