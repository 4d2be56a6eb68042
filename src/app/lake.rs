//! The questions answered from a lake directory instead of an index (`--lake DIR`): the events
//! are read back from Parquet ([`crate::lake::read_lake`]) and the same analysis runs on them.
//! Incidents are detected as from the index: the skeleton's kinds everywhere, client
//! connections only in the failovers' spans and each session's last few before them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::event::Event;
use crate::incident::skew::Skew;
use crate::incident::{self, Incident};
use crate::time;

use super::backend::Backend;
use super::{
    find_incident, report, session, Filter, Found, IncidentEntry, IncidentReport, Indexed,
    SessionAnswer, Window, ZxidAnswer,
};

/// A lake directory, with the incident definitions to use.
#[derive(Debug)]
pub struct Lake {
    dir: PathBuf,
    queries: Vec<PathBuf>,
}

impl Lake {
    /// The lake under `dir` (as `zklens export --out` writes it); `queries` are directories of
    /// definitions overriding `queries/*.toml`. A directory without a Parquet file is an error.
    pub fn open(dir: &Path, queries: Vec<PathBuf>) -> Result<Lake> {
        if crate::lake::lake_files(dir)?.is_empty() {
            return Err(Error::NotFound(format!(
                "{}: no Parquet files of a lake here (zklens export --out writes them)",
                dir.display()
            )));
        }
        Ok(Lake {
            dir: dir.to_path_buf(),
            queries,
        })
    }

    fn read(&self, keep: &mut dyn FnMut(&Event) -> bool) -> Result<Vec<Event>> {
        crate::lake::read_lake(&self.dir, keep)
    }

    /// Every incident the lake's events show.
    pub fn all_incidents(&self) -> Result<Vec<Incident>> {
        let defs = incident::Definitions::load(&self.queries)?;
        let needs = incident::needs(&defs);
        let mut windowed_kind = Vec::new();
        let skeleton = self.read(&mut |e| {
            if needs.kinds.iter().any(|k| kind_matches(&e.kind, k)) {
                return true;
            }
            if needs.windowed.iter().any(|k| kind_matches(&e.kind, k)) {
                windowed_kind.push(e.clone());
            }
            false
        })?;
        let windows = incident::connect_windows(&incident::detect(&skeleton, &defs), &defs);
        if windows.is_empty() {
            return Ok(incident::detect(&skeleton, &defs));
        }
        let mut events = skeleton;
        events.extend(windowed(windowed_kind, &windows));
        events.sort_by(|a, b| (&a.source, a.offset).cmp(&(&b.source, b.offset)));
        events.dedup_by(|a, b| a.source == b.source && a.offset == b.offset && a.kind == b.kind);
        Ok(incident::detect(&events, &defs))
    }

    fn skews(&self) -> Result<Vec<Skew>> {
        let events = self.read(&mut |e| {
            e.logger.as_deref() == Some("txnlog")
                || (e.attrs.session.is_some() && e.attrs.zxid.is_some())
        })?;
        Ok(incident::skew::estimate(&events))
    }

    /// The events `keep` accepts within `f` (its window, limit and count), in time order
    /// (events without a time first; events at one instant by source and offset).
    fn found(&self, f: &Filter, keep: &dyn Fn(&Event) -> bool) -> Result<(Found, Vec<Event>)> {
        let w = &f.window;
        let now = time::now_nanos();
        let bound = |t: &Option<String>| {
            t.as_deref()
                .map(|t| time::parse_time(t, w.tz, now))
                .transpose()
        };
        let (since, until) = (bound(&w.since)?, bound(&w.until)?);
        let mut all = self.read(&mut |e| keep(e))?;
        all.sort_by(|a, b| {
            (a.ts.unwrap_or(i64::MIN), &a.source, a.offset).cmp(&(
                b.ts.unwrap_or(i64::MIN),
                &b.source,
                b.offset,
            ))
        });
        let inside = |e: &Event| match e.ts {
            Some(t) => since.is_none_or(|s| t >= s) && until.is_none_or(|u| t < u),
            None => since.is_none() && until.is_none(),
        };
        let mut events: Vec<Event> = all.iter().filter(|e| inside(e)).cloned().collect();
        let total = events.len();
        if f.count {
            events.clear();
        } else if let Some(n) = f.limit {
            events.truncate(n);
        }
        Ok((
            Found {
                total,
                events,
                truncated: false,
            },
            all,
        ))
    }
}

/// Does `kind` match `pattern` (a kind, or a prefix and `*`: `election.*`).
fn kind_matches(kind: &str, pattern: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => kind.starts_with(prefix),
        None => kind == pattern,
    }
}

/// The events of `kind_events` inside `windows`, and for each session among them its last few
/// such events before the first window it shows up in (as the index's detection reads them).
fn windowed(kind_events: Vec<Event>, windows: &[(i64, i64)]) -> Vec<Event> {
    const EARLIER: usize = 16;
    let in_window = |t: i64| windows.iter().any(|w| w.0 <= t && t < w.1);
    let (near, rest): (Vec<Event>, Vec<Event>) = kind_events
        .into_iter()
        .partition(|e| e.ts.is_some_and(in_window));
    let first_seen = super::first_windows(&near, windows);
    let mut before: BTreeMap<u64, Vec<Event>> = BTreeMap::new();
    for e in rest.into_iter().chain(near.iter().cloned()) {
        let Some(s) = e.attrs.session else { continue };
        let t = e.ts.unwrap_or(i64::MIN);
        if first_seen.get(&s).is_some_and(|&lo| t < lo) {
            before.entry(s).or_default().push(e);
        }
    }
    let mut out = near;
    for (_, mut v) in before {
        v.sort_by(|a, b| {
            (a.ts.unwrap_or(i64::MIN), &a.source, a.offset).cmp(&(
                b.ts.unwrap_or(i64::MIN),
                &b.source,
                b.offset,
            ))
        });
        let from = v.len().saturating_sub(EARLIER);
        out.extend(v.split_off(from));
    }
    out
}

fn unsupported(what: &str) -> Error {
    Error::Param(format!(
        "{what} is not answered from a lake (--lake answers session, zxid, incidents, incident, skew and recipes); read the lake with an engine (README: The event lake) or ingest it"
    ))
}

impl Backend for Lake {
    fn search(&self, _query: &str, _f: &Filter) -> Result<Found> {
        Err(unsupported("a query"))
    }
    fn session(&self, id: u64, f: &Filter) -> Result<SessionAnswer> {
        let (found, all) = self.found(f, &|e| e.attrs.session == Some(id))?;
        let summary = (!f.count).then(|| session::lifecycle(id, &all).to_string());
        Ok(SessionAnswer {
            session: crate::event::hex_id(id),
            summary,
            found,
        })
    }
    fn zxid(&self, id: u64, f: &Filter) -> Result<ZxidAnswer> {
        let (found, _) = self.found(f, &|e| e.attrs.zxid == Some(id))?;
        Ok(ZxidAnswer::new(id, found))
    }
    fn incidents(&self, w: &Window) -> Result<Vec<IncidentEntry>> {
        super::listed(self.all_incidents()?, w)
    }
    fn incident(&self, id: &str) -> Result<IncidentReport> {
        let incident = find_incident(self.all_incidents()?, id)?;
        Ok(report(incident, &self.skews()?, None))
    }
    fn incident_html(&self, id: &str) -> Result<String> {
        let incident = find_incident(self.all_incidents()?, id)?;
        Ok(crate::render::html::render(&incident, &self.skews()?, &[]))
    }
    fn skew(&self) -> Result<Vec<Skew>> {
        self.skews()
    }
    fn recipes(&self) -> Result<Vec<crate::recipe::Timeline>> {
        let defs = incident::Definitions::load(&self.queries)?;
        let events = self.read(&mut |e| {
            crate::recipe::NEEDS
                .iter()
                .chain(&[crate::recipe::SERVICE_ROLE])
                .any(|k| kind_matches(&e.kind, k))
        })?;
        Ok(crate::recipe::read(&events, &defs.recipes))
    }
    fn indexed(&self) -> Result<Indexed> {
        Err(unsupported("sources"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_match_names_and_prefixes() {
        assert!(kind_matches("election.leading", "election.*"));
        assert!(kind_matches("txn.create", "txn.create"));
        assert!(!kind_matches("txn.create2", "txn.create"));
        assert!(!kind_matches("session.expired", "election.*"));
    }
}
