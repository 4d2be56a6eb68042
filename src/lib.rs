//! zklens: a log aggregator and distributed-trace analyzer for systems coordinated by Apache
//! ZooKeeper.
//!
//! Data flows one way: a [`source::Source`] (files, followed files, HTTP, transaction logs,
//! snapshots) reads through the [`parser`] into [`event::Event`]s, in batches that carry a
//! [`checkpoint::CheckpointDelta`]; a [`sink::Sink`] ([`index::IndexSink`], a printer, the
//! service's live detector) takes them and commits them with the checkpoints; [`query`] searches
//! the index, [`incident`] reconstructs failovers from the events, [`render`] prints them, and
//! [`app`] answers the CLI, the HTTP API ([`serve`]) and `--server` ([`remote`]) alike. The
//! [`pipeline`] drives sources into sinks: batch `ingest` and the service are its two drivers.
//! ARCHITECTURE.md has the diagram and what each module must not know.

#![warn(missing_docs)]

pub mod agent;
pub mod app;
pub mod checkpoint;
pub mod devtools;
pub mod discovery;
pub mod error;
pub mod event;
pub mod incident;
pub mod index;
#[cfg(feature = "lake")]
pub mod lake;
pub mod parser;
pub mod pipeline;
pub mod query;
pub mod recipe;
pub mod remote;
pub mod render;
pub mod serve;
pub mod sink;
pub mod source;
pub mod time;
pub mod txnlog;

pub use error::{Error, Result};
pub use event::Event;
