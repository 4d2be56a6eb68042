//! Renderings of transaction records and snapshots.
//!
//! * `toolkit_*`: exactly what ZooKeeper 3.8's `TxnLogToolkit -d` prints (Debian's
//!   `zookeeper` 3.8.0 is the reference), including its quirks: `DateFormat` SHORT date + LONG
//!   time in the JVM's zone (en_US patterns), `List.toString()` of ACLs with jute's trailing
//!   newline inside, jute `toString()` (CSV-ish, newline-terminated) for delete/setACL/session/
//!   error bodies, and multi sub-op bodies printed as their raw bytes decoded as UTF-8.
//! * [`jsonl`]: one JSON object per record.
//! * [`snapshot_summary`]: sessions, ephemerals by session, seal and digest of a snapshot.

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::path::PathBuf;

use chrono::{SecondsFormat, TimeZone};
use serde_json::{json, Map, Value};

use super::jute::java_utf8;
use super::log::{TxnLogHeader, TxnLogReader, TxnRecord};
use super::op::{err_name, op_name, Acl, Op};
use super::snapshot::{EphemeralOwners, NodeKind, SnapshotReader, MAX_SNAPSHOT_EPHEMERALS};
use crate::error::{Error, Result};
use crate::event::hex_id;

/// The first line of `TxnLogToolkit -d`.
pub fn toolkit_header_line(h: &TxnLogHeader) -> String {
    format!(
        "ZooKeeper Transactional Log File with dbid {} txnlog format version {}",
        h.dbid, h.version
    )
}

/// The last line of `TxnLogToolkit -d` after `count` records.
pub fn toolkit_eof_line(count: u64) -> String {
    format!("EOF reached after {count} txns.")
}

/// `DateFormat.getDateTimeInstance(SHORT, LONG)` for the en_US locale (`M/d/yy, h:mm:ss a z`)
/// in zone `tz` (the zone name is the tz database abbreviation, which is what Java prints for
/// UTC and for zones with alphabetic abbreviations).
pub fn java_date(time_ms: i64, tz: &chrono_tz::Tz) -> String {
    // The text has second resolution and consecutive records share their second: formatting
    // once per second (per thread) takes the date off the profile of a large dump.
    thread_local! {
        static LAST: std::cell::RefCell<Option<(i64, chrono_tz::Tz, String)>> =
            const { std::cell::RefCell::new(None) };
    }
    let sec = time_ms.div_euclid(1000);
    LAST.with(|cell| {
        if let Some((s, z, text)) = cell.borrow().as_ref() {
            if *s == sec && z == tz {
                return text.clone();
            }
        }
        let text = match tz.timestamp_millis_opt(time_ms).single() {
            Some(t) => t.format("%-m/%-d/%y, %-I:%M:%S %p %Z").to_string(),
            None => format!("{time_ms}ms"),
        };
        *cell.borrow_mut() = Some((sec, *tz, text.clone()));
        text
    })
}

/// What a JVM whose default charset is US-ASCII (`LC_ALL=C`) prints for `s`: every non-ASCII
/// character (a surrogate pair counts as one) becomes `?`. Apply to [`toolkit_line`] to match
/// `TxnLogToolkit` run without a UTF-8 locale.
pub fn java_ascii(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_ascii() { c } else { '?' })
        .collect()
}

/// jute's `ToStringOutputArchive` string escaping (`'` prefix, `%`-escapes for NUL, LF, CR, `,`,
/// `}` and `%`), appended to `o`.
fn push_csv(o: &mut String, s: &str) {
    o.push('\'');
    for c in s.chars() {
        match c {
            '\0' => o.push_str("%00"),
            '\n' => o.push_str("%0A"),
            '\r' => o.push_str("%0D"),
            ',' => o.push_str("%2C"),
            '}' => o.push_str("%7D"),
            '%' => o.push_str("%25"),
            c => o.push(c),
        }
    }
}

/// Appends `items`, each written by `item`, with `sep` between them.
fn push_joined<T>(
    o: &mut String,
    items: impl IntoIterator<Item = T>,
    sep: &str,
    mut item: impl FnMut(&mut String, T),
) {
    for (i, x) in items.into_iter().enumerate() {
        if i > 0 {
            o.push_str(sep);
        }
        item(o, x);
    }
}

/// An `ACL` record as nested in jute output: `perms,s{'scheme,'id}`.
fn push_acl_fields(o: &mut String, a: &Acl) {
    let _ = write!(o, "{},s{{", a.perms);
    push_csv(o, &a.scheme);
    o.push(',');
    push_csv(o, &a.id);
    o.push('}');
}

/// `List<ACL>.toString()`: `[31,s{'world,'anyone}\n, ...]`; `null` for a null vector.
fn push_acl_list(o: &mut String, acl: &Option<Vec<Acl>>) {
    match acl {
        None => o.push_str("null"),
        Some(v) => {
            o.push('[');
            push_joined(o, v, ", ", |o, a| {
                push_acl_fields(o, a);
                o.push('\n');
            });
            o.push(']');
        }
    }
}

/// `TxnLogToolkit.checkNullToEmpty`: bytes as a Java UTF-8 string, `""` for null/empty.
fn push_data(o: &mut String, d: &Option<Vec<u8>>) {
    match d.as_deref().map(std::str::from_utf8) {
        None => {}
        Some(Ok(text)) => o.push_str(text),
        Some(Err(_)) => o.push_str(&java_utf8(d.as_deref().unwrap_or_default())),
    }
}

/// The fields every create prints first: `path,data,acl list`.
fn push_node(o: &mut String, path: &str, data: &Option<Vec<u8>>, acl: &Option<Vec<Acl>>) {
    o.push_str(path);
    o.push(',');
    push_data(o, data);
    o.push(',');
    push_acl_list(o, acl);
}

/// `TxnLogToolkit.getFormattedTxnStr` for a body, appended to `o`.
fn push_body(o: &mut String, op: &Op) {
    // `write!` to a String cannot fail.
    match op {
        Op::Create {
            path,
            data,
            acl,
            ephemeral,
            parent_cversion,
            ..
        } => {
            push_node(o, path, data, acl);
            let _ = write!(o, ",{ephemeral},{parent_cversion}");
        }
        Op::SetData {
            path,
            data,
            version,
        }
        | Op::Reconfig {
            path,
            data,
            version,
        } => {
            let _ = write!(o, "{path},");
            push_data(o, data);
            let _ = write!(o, ",{version}");
        }
        Op::CreateContainer {
            path,
            data,
            acl,
            parent_cversion,
        } => {
            push_node(o, path, data, acl);
            let _ = write!(o, ",{parent_cversion}");
        }
        Op::CreateTtl {
            path,
            data,
            acl,
            parent_cversion,
            ttl,
        } => {
            push_node(o, path, data, acl);
            let _ = write!(o, ",{parent_cversion},{ttl}");
        }
        Op::Multi { ops } => push_joined(o, ops.iter().flatten(), ";", |o, sub| {
            let _ = write!(o, "{}:", op_name(sub.type_code));
            push_data(o, &sub.raw);
        }),
        // The rest print the jute record's toString(): fields joined by ',', a trailing newline.
        Op::Delete { path } | Op::DeleteContainer { path } => {
            push_csv(o, path);
            o.push('\n');
        }
        Op::SetAcl { path, acl, version } => {
            push_csv(o, path);
            o.push_str(",v{");
            push_joined(o, acl.iter().flatten(), ",", |o, a| {
                o.push_str("s{");
                push_acl_fields(o, a);
                o.push('}');
            });
            let _ = writeln!(o, "}},{version}");
        }
        Op::Check { path, version } => {
            push_csv(o, path);
            let _ = writeln!(o, ",{version}");
        }
        Op::CreateSession { timeout_ms } => {
            let _ = writeln!(o, "{timeout_ms}");
        }
        Op::CloseSession {
            paths_to_delete: Some(p),
        } => {
            o.push_str("v{");
            push_joined(o, p, ",", |o, path| push_csv(o, path));
            o.push_str("}\n");
        }
        Op::CloseSession {
            paths_to_delete: None,
        } => {}
        Op::Error { code } => {
            let _ = writeln!(o, "{code}");
        }
        // TxnLogToolkit fails on these ("Unsupported Txn with type=", EOFException).
        Op::Unknown { .. } | Op::Malformed { .. } => {}
    }
}

/// Appends [`toolkit_line`] to `o`.
fn push_line(o: &mut String, rec: &TxnRecord, tz: &chrono_tz::Tz) {
    let _ = write!(
        o,
        "{} session 0x{:x} cxid 0x{:x} zxid 0x{:x} {} ",
        java_date(rec.time_ms, tz),
        rec.session,
        i64::from(rec.cxid),
        rec.zxid,
        op_name(rec.type_code),
    );
    push_body(o, &rec.op);
    if o.ends_with('\n') {
        o.pop();
    }
}

/// Appends [`toolkit_record_text`] to `o`.
fn push_record_text(o: &mut String, rec: &TxnRecord, tz: &chrono_tz::Tz) {
    if !rec.crc_ok {
        o.push_str("CRC ERROR - ");
    }
    let line = o.len();
    push_line(o, rec, tz);
    o.push('\n');
    if !rec.crc_ok {
        let again = o[line..].to_string();
        o.push_str(&again);
    }
}

/// The text `TxnLogToolkit -d` prints for a record, without the line terminator (it may contain
/// newlines: ACL lists and node data are printed raw). `tz` is the JVM's default zone.
pub fn toolkit_line(rec: &TxnRecord, tz: &chrono_tz::Tz) -> String {
    let mut s = String::new();
    push_line(&mut s, rec, tz);
    s
}

/// Everything `TxnLogToolkit -d` prints for a record, newline-terminated: a record whose
/// checksum does not match is printed twice, first with a `CRC ERROR - ` prefix.
pub fn toolkit_record_text(rec: &TxnRecord, tz: &chrono_tz::Tz) -> String {
    let mut s = String::new();
    push_record_text(&mut s, rec, tz);
    s
}

fn out_err(e: std::io::Error) -> Error {
    Error::io(PathBuf::from("<output>"), e)
}

/// Writes what `TxnLogToolkit -d` prints for a whole log: header line, records, EOF line.
/// Returns the number of records.
pub fn toolkit_dump<R: Read, W: Write>(
    reader: &mut TxnLogReader<R>,
    tz: &chrono_tz::Tz,
    out: &mut W,
) -> Result<u64> {
    writeln!(out, "{}", toolkit_header_line(reader.header())).map_err(out_err)?;
    let mut n = 0u64;
    // One text buffer for every record, flushed to `out` when it holds 64 KiB.
    let mut text = String::with_capacity(1 << 17);
    for rec in reader.by_ref() {
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                out.write_all(text.as_bytes()).map_err(out_err)?;
                return Err(e);
            }
        };
        push_record_text(&mut text, &rec, tz);
        if text.len() >= 1 << 16 {
            out.write_all(text.as_bytes()).map_err(out_err)?;
            text.clear();
        }
        n += 1;
    }
    out.write_all(text.as_bytes()).map_err(out_err)?;
    writeln!(out, "{}", toolkit_eof_line(n)).map_err(out_err)?;
    Ok(n)
}

fn rfc3339(ms: i64) -> Value {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| Value::String(t.to_rfc3339_opts(SecondsFormat::Millis, true)))
        .unwrap_or(Value::Null)
}

fn acl_json(acl: &Option<Vec<Acl>>) -> Value {
    match acl {
        None => Value::Null,
        Some(v) => v
            .iter()
            .map(|a| json!({"perms": a.perms, "scheme": a.scheme, "id": a.id}))
            .collect(),
    }
}

fn data_len(d: &Option<Vec<u8>>) -> Value {
    d.as_ref().map_or(Value::Null, |b| json!(b.len()))
}

fn op_fields(op: &Op, m: &mut Map<String, Value>) {
    let mut put = |k: &str, v: Value| {
        m.insert(k.to_string(), v);
    };
    if let Some(p) = op.path() {
        put("path", json!(p));
    }
    match op {
        Op::Create {
            data,
            acl,
            ephemeral,
            parent_cversion,
            v0,
            ..
        } => {
            put("ephemeral", json!(ephemeral));
            put("data_len", data_len(data));
            put("acl", acl_json(acl));
            put("parent_cversion", json!(parent_cversion));
            if *v0 {
                put("v0", json!(true));
            }
        }
        Op::CreateContainer {
            data,
            acl,
            parent_cversion,
            ..
        } => {
            put("data_len", data_len(data));
            put("acl", acl_json(acl));
            put("parent_cversion", json!(parent_cversion));
        }
        Op::CreateTtl {
            data,
            acl,
            parent_cversion,
            ttl,
            ..
        } => {
            put("data_len", data_len(data));
            put("acl", acl_json(acl));
            put("parent_cversion", json!(parent_cversion));
            put("ttl", json!(ttl));
        }
        Op::SetData { data, version, .. } => {
            put("data_len", data_len(data));
            put("version", json!(version));
        }
        Op::Reconfig { data, version, .. } => {
            put("data", json!(data.as_ref().map(|d| java_utf8(d))));
            put("version", json!(version));
        }
        Op::SetAcl { acl, version, .. } => {
            put("acl", acl_json(acl));
            put("version", json!(version));
        }
        Op::Check { version, .. } => put("version", json!(version)),
        Op::CreateSession { timeout_ms } => put("timeout", json!(timeout_ms)),
        Op::CloseSession { paths_to_delete } => put("paths2Delete", json!(paths_to_delete)),
        Op::Error { code } => {
            put("err", json!(code));
            put("err_name", json!(err_name(*code)));
        }
        Op::Multi { ops } => {
            let subs: Vec<Value> = ops
                .iter()
                .flatten()
                .map(|s| {
                    let mut sm = Map::new();
                    sm.insert("op".into(), json!(op_name(s.type_code)));
                    op_fields(&s.op, &mut sm);
                    Value::Object(sm)
                })
                .collect();
            put("ops", Value::Array(subs));
        }
        Op::Malformed { reason, .. } => put("malformed", json!(reason)),
        Op::Delete { .. } | Op::DeleteContainer { .. } | Op::Unknown { .. } => {}
    }
}

/// A record as a JSON object: offset, session/cxid/zxid (`0x` hex), epoch, time (RFC 3339 UTC),
/// op, the body's fields (path, ephemeral, timeout, err, paths2Delete, ops for multi, ...),
/// crc_ok and digest.
pub fn record_json(rec: &TxnRecord) -> Value {
    let mut m = Map::new();
    m.insert("offset".into(), json!(rec.offset));
    m.insert("session".into(), json!(hex_id(rec.session)));
    m.insert("cxid".into(), json!(hex_id(i64::from(rec.cxid) as u64)));
    m.insert("zxid".into(), json!(hex_id(rec.zxid)));
    m.insert("epoch".into(), json!(rec.epoch()));
    m.insert("time".into(), rfc3339(rec.time_ms));
    m.insert("op".into(), json!(op_name(rec.type_code)));
    op_fields(&rec.op, &mut m);
    m.insert("crc_ok".into(), json!(rec.crc_ok));
    if let Some(d) = rec.digest {
        m.insert(
            "digest".into(),
            json!({"version": d.version, "tree_digest": d.tree_digest}),
        );
    }
    Value::Object(m)
}

/// A record as one line of JSON (no trailing newline).
pub fn jsonl(rec: &TxnRecord) -> String {
    record_json(rec).to_string()
}

/// Counts gathered by [`snapshot_summary`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SnapshotStats {
    /// Nodes read (the root included).
    pub nodes: u64,
    /// Ephemeral nodes.
    pub ephemerals: u64,
    /// Container nodes.
    pub containers: u64,
    /// TTL nodes.
    pub ttl_nodes: u64,
    /// Sum of data lengths.
    pub data_bytes: u64,
    /// The node list ended with the `/` terminator and the seal was read.
    pub complete: bool,
}

/// Writes a text summary of a snapshot in the spirit of `SnapshotFormatter`: node counts, the
/// session table with ephemeral counts (`%#016x, timeout, count`), the ephemerals of every
/// session, the seal/digest/lastProcessedZxid, and the notices. Streams the nodes (only
/// ephemeral paths are kept).
pub fn snapshot_summary<R: Read, W: Write>(
    reader: &mut SnapshotReader<R>,
    out: &mut W,
) -> Result<SnapshotStats> {
    let mut st = SnapshotStats::default();
    // Bounded: the table's sessions, as many owners it does not list, and so many paths.
    let mut eph = EphemeralOwners::new(reader.sessions(), reader.max_sessions());
    for node in reader.by_ref() {
        let node = node?;
        st.nodes += 1;
        st.data_bytes += u64::try_from(node.data_len).unwrap_or(0);
        match node.stat.kind() {
            NodeKind::Persistent => {}
            NodeKind::Container => st.containers += 1,
            NodeKind::Ttl(_) => st.ttl_nodes += 1,
            NodeKind::Ephemeral(owner) => {
                st.ephemerals += 1;
                eph.add(owner, node.path);
            }
        }
    }
    st.complete = reader.trailer().is_some();
    let h = *reader.header();
    let w = &mut *out;
    let mut text = String::new();
    use std::fmt::Write as _;
    let _ = writeln!(
        text,
        "ZooKeeper Snapshot File {} dbid {} format version {}",
        reader.path().display(),
        h.dbid,
        h.version
    );
    let _ = writeln!(
        text,
        "Nodes: {} (ephemeral {}, container {}, ttl {}), data {} bytes",
        st.nodes, st.ephemerals, st.containers, st.ttl_nodes, st.data_bytes
    );
    let _ = writeln!(text, "Session Details (sid, timeout, ephemeralCount):");
    for s in reader.sessions() {
        let n = eph.count(s.id);
        let _ = writeln!(text, "{:#016x}, {}, {}", s.id, s.timeout_ms, n);
    }
    if reader.skipped_sessions() > 0 {
        let _ = writeln!(
            text,
            "... and {} more sessions over the limit of {} (not listed)",
            reader.skipped_sessions(),
            reader.max_sessions()
        );
    }
    let _ = writeln!(text, "Ephemerals by session:");
    // Each session takes its ephemerals out of the map: what is left belongs to sessions the
    // table does not list (one map operation per session, whatever the sizes).
    for s in reader.sessions() {
        let paths = eph.take(s.id);
        if !paths.is_empty() {
            let _ = writeln!(text, "{:#016x} (timeout {} ms):", s.id, s.timeout_ms);
            for p in &paths {
                let _ = writeln!(text, "  {p}");
            }
        }
    }
    let dropped = eph.over() + eph.unowned();
    let orphans = eph.into_rest();
    if !orphans.is_empty() {
        let skipped = if reader.skipped_sessions() > 0 {
            " (or skipped over its limit)"
        } else {
            ""
        };
        let _ = writeln!(
            text,
            "Ephemerals of sessions not in the session table{skipped}:"
        );
        for (id, paths) in orphans {
            let _ = writeln!(text, "{id:#016x}:");
            for p in paths {
                let _ = writeln!(text, "  {p}");
            }
        }
    }
    if dropped > 0 {
        let _ = writeln!(
            text,
            "... and {dropped} more ephemerals not listed (over the bounds on what is held: {MAX_SNAPSHOT_EPHEMERALS} paths, {} sessions)",
            reader.max_sessions()
        );
    }
    match reader.trailer() {
        Some(t) => {
            let _ = writeln!(
                text,
                "Seal: checksum {:#x} {}",
                t.checksum_stored,
                if t.seals_ok { "ok" } else { "MISMATCH" }
            );
            if let Some(d) = t.digest {
                let _ = writeln!(
                    text,
                    "Digest: zxid {} version {} digest {}",
                    hex_id(d.zxid),
                    d.version,
                    d.digest
                );
            }
            if let Some(z) = t.last_processed_zxid {
                let _ = writeln!(text, "Last processed zxid: {}", hex_id(z));
            }
        }
        None => {
            let _ = writeln!(text, "Seal: not reached (snapshot incomplete)");
        }
    }
    for n in reader.notices() {
        let _ = writeln!(text, "NOTICE {n}");
    }
    w.write_all(text.as_bytes()).map_err(out_err)?;
    Ok(st)
}
