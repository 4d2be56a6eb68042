//! The questions the CLI asks, behind one trait: answered from an index opened here
//! ([`Local`]) or by a running `zklens serve` (`crate::remote::Remote`). The CLI prints the
//! answers through one code path whichever answered.

use std::path::PathBuf;

use crate::error::Result;
use crate::incident::skew::Skew;
use crate::index::{DataDir, IndexHandle};

use super::{
    Filter, Found, IncidentEntry, IncidentReport, Indexed, SessionAnswer, Window, ZxidAnswer,
};

/// Whatever answers the query commands.
pub trait Backend {
    /// Events matching `query` (the query language, `incident:ID` included).
    fn search(&self, query: &str, f: &Filter) -> Result<Found>;
    /// One session's events and its lifecycle.
    fn session(&self, id: u64, f: &Filter) -> Result<SessionAnswer>;
    /// One transaction's events.
    fn zxid(&self, id: u64, f: &Filter) -> Result<ZxidAnswer>;
    /// The incidents starting inside `w`.
    fn incidents(&self, w: &Window) -> Result<Vec<IncidentEntry>>;
    /// One incident and its post-mortem text.
    fn incident(&self, id: &str) -> Result<IncidentReport>;
    /// One incident's self-contained HTML report.
    fn incident_html(&self, id: &str) -> Result<String>;
    /// Each node's clock offset.
    fn skew(&self) -> Result<Vec<Skew>>;
    /// Every recipe parent's holder timeline.
    fn recipes(&self) -> Result<Vec<crate::recipe::Timeline>>;
    /// What the index holds.
    fn indexed(&self) -> Result<Indexed>;
}

/// An index opened in this process, with the incident definitions to use.
#[derive(Debug)]
pub struct Local {
    idx: IndexHandle,
    queries: Vec<PathBuf>,
}

impl Local {
    /// Opens the index of `dir`; `queries` are directories of definitions overriding
    /// `queries/*.toml`.
    pub fn open(dir: &DataDir, queries: Vec<PathBuf>) -> Result<Local> {
        Ok(Local {
            idx: IndexHandle::open(dir)?,
            queries,
        })
    }
}

impl Backend for Local {
    fn search(&self, query: &str, f: &Filter) -> Result<Found> {
        super::search(&self.idx, query, f, &self.queries)
    }
    fn session(&self, id: u64, f: &Filter) -> Result<SessionAnswer> {
        super::session(&self.idx, id, f)
    }
    fn zxid(&self, id: u64, f: &Filter) -> Result<ZxidAnswer> {
        super::zxid(&self.idx, id, f)
    }
    fn incidents(&self, w: &Window) -> Result<Vec<IncidentEntry>> {
        super::incident_list(&self.idx, &self.queries, w)
    }
    fn incident(&self, id: &str) -> Result<IncidentReport> {
        super::incident_report(&self.idx, &self.queries, id)
    }
    fn incident_html(&self, id: &str) -> Result<String> {
        super::incident_html(&self.idx, &self.queries, id)
    }
    fn skew(&self) -> Result<Vec<Skew>> {
        super::skews(&self.idx)
    }
    fn recipes(&self) -> Result<Vec<crate::recipe::Timeline>> {
        super::recipes(&self.idx, &self.queries)
    }
    fn indexed(&self) -> Result<Indexed> {
        Ok(super::indexed(&self.idx))
    }
}
