//! Time, at the bottom of the flow where every layer may use it: the zone a source's zone-less
//! timestamps are in ([`Tz`]), fixed-position timestamp parsers ([`TimeFormat`], in `format`),
//! time expressions on the command line and in queries ([`parse_time`]: RFC 3339
//! `2026-11-24T22:02:29Z`, a date-time without zone read in the given zone `2026-11-24 22:02:29`,
//! `2026-11-24`, or a duration before now `15m`, `2h`, `3d`, `90s`, `1w`), and how times are
//! printed ([`rfc3339`], [`short`]).

mod format;

pub use format::{civil_from_nanos, nanos_from_f64, Civil, Part, TimeFormat, Tz, ZoneConverter};

use crate::error::{Error, Result};

/// Parses a time expression to UTC nanoseconds. `now` is the current time in ns.
pub fn parse_time(s: &str, tz: Tz, now: i64) -> Result<i64> {
    let t = s.trim();
    if let Some(d) = parse_duration(t) {
        return now.checked_sub(d).ok_or_else(|| out_of_range(t));
    }
    let b = t.as_bytes();
    let zone = ZoneConverter::new(tz);
    if let Some((c, used)) = TimeFormat::Iso8601.parse_prefix(b) {
        if used == b.len() {
            return zone.to_nanos(&c).ok_or_else(|| invalid(t, &c));
        }
    }
    // Date-time without seconds, or a date alone.
    for (fmt, n) in [
        ("yyyy-MM-dd HH:mm", 16),
        ("yyyy-MM-dd'T'HH:mm", 16),
        ("yyyy-MM-dd", 10),
    ] {
        if b.len() == n {
            if let Some((c, _)) = TimeFormat::compile(fmt)
                .ok()
                .and_then(|f| f.parse_prefix(b))
            {
                return zone.to_nanos(&c).ok_or_else(|| invalid(t, &c));
            }
        }
    }
    Err(bad(t))
}

/// Fields that were read but name no instant zklens can hold: out of range (the same fields in
/// another year would be a time), or no real date or time.
fn invalid(t: &str, c: &Civil) -> Error {
    let elsewhen = Civil { year: 2000, ..*c };
    if elsewhen.readable() {
        out_of_range(t)
    } else {
        bad(t)
    }
}

/// The first and last years a time can have (an `i64` of nanoseconds since 1970 holds
/// 1677-09-21 to 2262-04-11); a time outside is refused, never wrapped or clamped.
pub const MIN_YEAR: i32 = 1677;
/// See [`MIN_YEAR`].
pub const MAX_YEAR: i32 = 2262;

fn out_of_range(t: &str) -> Error {
    Error::Time(format!(
        "{t:?} is outside the times zklens can hold ({MIN_YEAR}-09-21 to {MAX_YEAR}-04-11 UTC)"
    ))
}

fn bad(t: &str) -> Error {
    Error::Time(format!(
        "cannot read {t:?} as a time: use RFC 3339 (2026-11-24T22:02:29Z), \"2026-11-24 22:02:29\", a date, or a duration ago (15m, 2h, 3d)"
    ))
}

/// `90s`, `15m`, `2h`, `3d`, `1w`, `500ms` → nanoseconds.
pub fn parse_duration(s: &str) -> Option<i64> {
    let split = s.find(|c: char| !c.is_ascii_digit())?;
    if split == 0 {
        return None;
    }
    let n: i64 = s[..split].parse().ok()?;
    let unit: i64 = match &s[split..] {
        "ms" => 1_000_000,
        "s" | "sec" => 1_000_000_000,
        "m" | "min" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        "d" => 86_400_000_000_000,
        "w" => 7 * 86_400_000_000_000,
        _ => return None,
    };
    n.checked_mul(unit)
}

/// Formats UTC nanoseconds as RFC 3339 with milliseconds (`2026-11-24T22:02:29.123Z`).
pub fn rfc3339(ns: i64) -> String {
    millis(ns, 'T', "Z")
}

/// Formats UTC nanoseconds for a table (`2026-11-24 22:02:29.123`).
pub fn short(ns: i64) -> String {
    millis(ns, ' ', "")
}

/// Date, `sep`, time to the millisecond, `zone`.
fn millis(ns: i64, sep: char, zone: &str) -> String {
    let c: Civil = civil_from_nanos(ns);
    format!(
        "{:04}-{:02}-{:02}{sep}{:02}:{:02}:{:02}.{:03}{zone}",
        c.year,
        c.month,
        c.day,
        c.hour,
        c.minute,
        c.second,
        c.nanos / 1_000_000
    )
}

/// The current time in ns since the epoch.
pub fn now_nanos() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absolute_and_relative() {
        let now = 1_764_021_749_000_000_000;
        let a = parse_time("2026-11-24T22:02:29Z", Tz::Utc, now).expect("rfc3339");
        assert_eq!(
            parse_time("2026-11-24 22:02:29", Tz::Utc, now).ok(),
            Some(a)
        );
        assert_eq!(
            parse_time("2026-11-24 23:02:29", Tz::Fixed(3600), now).ok(),
            Some(a)
        );
        assert_eq!(rfc3339(a), "2026-11-24T22:02:29.000Z");
        assert_eq!(
            parse_time("15m", Tz::Utc, now).ok(),
            Some(now - 900_000_000_000)
        );
        assert!(parse_time("2026-11-24", Tz::Utc, now).is_ok());
        assert!(parse_time("yesterday-ish", Tz::Utc, now).is_err());
        assert!(parse_time("15 parsecs", Tz::Utc, now).is_err());
    }

    #[test]
    fn years_outside_1677_2262_are_errors_never_wrapped() {
        let now = 1_764_021_749_000_000_000;
        for t in [
            "9999-01-01T00:00:00Z",
            "9999-12-31 23:59:59",
            "1600-01-01",
            "2262-04-12",
            "1677-09-20T00:00:00Z",
        ] {
            match parse_time(t, Tz::Utc, now) {
                Err(Error::Time(m)) => assert!(m.contains("outside"), "{t}: {m}"),
                other => panic!("{t}: {other:?}"),
            }
        }
        // The edges that fit, and a duration reaching before 1677.
        assert!(parse_time("2262-04-11", Tz::Utc, now).is_ok());
        assert!(parse_time("1677-09-22", Tz::Utc, now).is_ok());
        assert!(parse_time("15250w", Tz::Utc, now).is_ok());
        assert!(parse_time("2026-13-01", Tz::Utc, now).is_err());
        // A line's fields in year 9999 or 1600 give no time (not 1816, no panic).
        let c = Civil {
            year: 9999,
            month: 1,
            day: 1,
            ..Civil::default()
        };
        assert_eq!(ZoneConverter::new(Tz::Utc).to_nanos(&c), None);
        let c = Civil { year: 1600, ..c };
        assert_eq!(ZoneConverter::new(Tz::Utc).to_nanos(&c), None);
        let b = b"9999-01-01T00:00:00.000+01:00 x";
        let (c, _) = TimeFormat::Iso8601.parse_prefix(b).expect("fields");
        assert_eq!(ZoneConverter::new(Tz::Utc).to_nanos(&c), None);
        // Epoch numbers beyond the range are no time (a cast would clamp them to 2262).
        assert_eq!(
            TimeFormat::EpochMillis.parse_prefix(b"253402300800000 x"),
            None
        );
        assert_eq!(nanos_from_f64(f64::INFINITY), None);
        assert_eq!(nanos_from_f64(1e6), Some(1_000_000));
    }
}
