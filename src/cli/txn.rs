//! `zklens txnlog dump` and `zklens snapshot dump`: ZooKeeper's binary files, printed.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{bail, Result};

use zklens::time::Tz;

use super::flags::Format;
use super::out::Out;
use super::TxnlogDumpArgs;

/// The zone TxnLogToolkit prints dates in (Java's default zone): UTC or an IANA zone (Java
/// names a fixed offset otherwise than the tz database does, so an offset is refused).
fn java_zone(tz: Tz) -> Result<chrono_tz::Tz> {
    match tz {
        Tz::Utc => Ok(chrono_tz::UTC),
        Tz::Named(z) => Ok(z),
        Tz::Fixed(_) => bail!(
            "--tz {tz}: txnlog dump prints dates in a named zone, as Java does (UTC, Europe/Berlin, Etc/GMT-2)"
        ),
    }
}

/// `zklens txnlog dump`.
pub fn txnlog_dump(a: &TxnlogDumpArgs) -> Result<u8> {
    let tz = java_zone(a.tz.zone()?)?;
    let mut out = Out::new();
    let mut failed = false;
    let mut records = 0u64;
    for f in &a.files {
        let mut r = match zklens::txnlog::open_txnlog_with(f, a.max_record_len) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("zklens: {e}");
                failed = true;
                continue;
            }
        };
        let res = match a.output.format {
            Format::Jsonl => {
                let mut n = 0u64;
                let mut res = Ok(0);
                for rec in r.by_ref() {
                    match rec {
                        Ok(rec) => {
                            if let Err(e) = writeln!(out, "{}", zklens::txnlog::jsonl(&rec)) {
                                res = Err(zklens::Error::io("<stdout>", e));
                                break;
                            }
                            n += 1;
                        }
                        Err(e) => {
                            res = Err(e);
                            break;
                        }
                    }
                }
                res.map(|_| n)
            }
            _ => zklens::txnlog::toolkit_dump(&mut r, &tz, &mut out),
        };
        // A failed write to standard output ends the command: it is no fault of this file.
        out.check()?;
        match res {
            Ok(n) => records += n,
            Err(e) => {
                eprintln!("zklens: {e}");
                failed = true;
            }
        }
        for n in r.take_notices() {
            eprintln!("zklens: {n}");
        }
    }
    out.flush()?;
    Ok(if failed {
        2
    } else if records > 0 {
        0
    } else {
        1
    })
}

/// `zklens snapshot dump`, holding at most `max_sessions` sessions of each session table.
pub fn snapshot_dump(files: &[PathBuf], max_sessions: usize) -> Result<u8> {
    let mut out = Out::new();
    let mut failed = false;
    for f in files {
        writeln!(out, "== {}", f.display())?;
        match zklens::txnlog::open_snapshot_with(f, max_sessions) {
            Ok(mut r) => {
                let res = zklens::txnlog::snapshot_summary(&mut r, &mut out);
                out.check()?;
                if let Err(e) = res {
                    eprintln!("zklens: {e}");
                    failed = true;
                }
                for n in r.take_notices() {
                    eprintln!("zklens: {n}");
                    failed = true;
                }
            }
            Err(e) => {
                eprintln!("zklens: {e}");
                failed = true;
            }
        }
    }
    out.flush()?;
    Ok(if failed { 2 } else { 0 })
}
