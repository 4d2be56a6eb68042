//! The incidents list and the clock-skew table, as `zklens incidents` and `zklens skew` print
//! them, locally or from a service.

use std::io::{self, Write};

use crate::incident::skew::Skew;

/// One row of the incidents list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IncidentLine<'a> {
    /// The incident id.
    pub id: &'a str,
    /// Its kind (`leader-failover`, ...).
    pub kind: &'a str,
    /// When it started (RFC 3339 UTC).
    pub started_at: &'a str,
    /// What it amounts to (`render::summary`).
    pub summary: &'a str,
}

/// The incidents list: a header and one aligned line per incident; nothing at all for none.
pub fn incidents_table(out: &mut dyn Write, rows: &[IncidentLine<'_>]) -> io::Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    // At least as wide as before ids could name an ensemble (`...@east`), so output without
    // ensembles is unchanged.
    let w = rows.iter().map(|r| r.id.len()).max().unwrap_or(0).max(36);
    writeln!(
        out,
        "{:<w$} {:<16} {:<25} SUMMARY",
        "ID", "KIND", "STARTED (UTC)"
    )?;
    for r in rows {
        writeln!(
            out,
            "{:<w$} {:<16} {:<25} {}",
            r.id, r.kind, r.started_at, r.summary
        )?;
    }
    Ok(())
}

/// The clock-skew table: each node's offset with its bounds and evidence, and what the numbers
/// mean; nothing at all for no estimates.
pub fn skew_table(out: &mut dyn Write, skews: &[Skew]) -> io::Result<()> {
    if skews.is_empty() {
        return Ok(());
    }
    writeln!(
        out,
        "{:<12} {:>12} {:>12} {:>12} {:>7}",
        "NODE", "OFFSET ms", "LOW ms", "HIGH ms", "PAIRS"
    )?;
    for s in skews {
        let node = match &s.ensemble {
            Some(e) => format!("{}@{e}", s.node),
            None => s.node.clone(),
        };
        writeln!(
            out,
            "{:<12} {:>12.1} {:>12.1} {:>12.1} {:>7}",
            node, s.estimate_ms, s.lo_ms, s.hi_ms, s.pairs
        )?;
    }
    writeln!(
        out,
        "(offset = the node's clock minus the leader's txn clock; the truth lies between LOW and HIGH)"
    )
}

/// Recipe holder timelines: one block per parent, one line per holding.
pub fn recipes_table(out: &mut dyn Write, list: &[crate::recipe::Timeline]) -> io::Result<()> {
    for t in list {
        let ensemble = t
            .ensemble
            .as_deref()
            .map(|e| format!(", ensemble {e}"))
            .unwrap_or_default();
        writeln!(
            out,
            "{} ({}, service {}{ensemble})",
            t.parent, t.scheme, t.service
        )?;
        for h in &t.holdings {
            let until = match (h.until_ts, h.until_zxid) {
                (Some(ts), Some(z)) => format!("{} 0x{z:x}", crate::time::rfc3339(ts)),
                _ => "still holding".to_string(),
            };
            let why = match h.ended {
                Some(crate::recipe::End::SessionExpired) => "session expired",
                Some(crate::recipe::End::SessionClosed) => "session closed",
                Some(crate::recipe::End::NodeDeleted) => "node deleted",
                None => "",
            };
            // Known from a snapshot only: it held by then, maybe long before.
            let by = if h.from_snapshot { "by" } else { "from" };
            writeln!(
                out,
                "  {:<16} session 0x{:x}  {by} {} 0x{:x}  until {until}  {why}",
                h.holder,
                h.session,
                crate::time::rfc3339(h.from_ts),
                h.from_zxid
            )?;
        }
        for w in &t.warnings {
            writeln!(out, "  WARNING: {w}")?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(f: impl Fn(&mut Vec<u8>) -> io::Result<()>) -> String {
        let mut b = Vec::new();
        f(&mut b).expect("write");
        String::from_utf8(b).expect("utf8")
    }

    #[test]
    fn incidents_table_aligns_and_is_empty_for_none() {
        let row = IncidentLine {
            id: "leader-failover-epoch-2",
            kind: "leader-failover",
            started_at: "2026-11-25T02:48:49.367Z",
            summary: "zk3 -> zk1",
        };
        let t = text(|b| incidents_table(b, &[row]));
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 2, "{t}");
        assert!(lines[0].starts_with("ID "));
        assert_eq!(lines[0].find("KIND"), lines[1].find("leader-failover "));
        assert_eq!(lines[0].find("SUMMARY"), lines[1].find("zk3 -> zk1"));
        assert_eq!(text(|b| incidents_table(b, &[])), "");
    }

    #[test]
    fn skew_table_has_one_decimal_and_a_legend() {
        let s = Skew {
            ensemble: None,
            node: "calc-a".into(),
            lo_ms: 2990.04,
            hi_ms: 3010.0,
            estimate_ms: 3000.02,
            pairs: 7,
        };
        let t = text(|b| skew_table(b, std::slice::from_ref(&s)));
        assert!(t
            .lines()
            .nth(1)
            .is_some_and(|l| l.contains("3000.0") && l.contains("2990.0") && l.ends_with(" 7")));
        assert!(t.contains("(offset = "));
        assert_eq!(text(|b| skew_table(b, &[])), "");
    }
}
