//! zklens: a log aggregator and distributed-trace analyzer for systems coordinated by Apache
//! ZooKeeper.
//!
//! Data flows one way: [`source`] (files, later txn logs and pulled logs) → [`parser`] (formats
//! from `parsers/`) → [`event::Event`] → sinks ([`index`]) → [`query`]. See ARCHITECTURE.md.

#![warn(missing_docs)]

pub mod checkpoint;
pub mod devtools;
pub mod discovery;
pub mod error;
pub mod event;
pub mod incident;
pub mod index;
pub mod output;
pub mod parser;
pub mod pipeline;
pub mod query;
pub mod remote;
pub mod serve;
pub mod sink;
pub mod source;
pub mod time;
pub mod txnlog;

pub use error::{Error, Result};
pub use event::Event;
/// The batch driver under its old name (`zklens::ingest::ingest`).
pub use pipeline::batch as ingest;
