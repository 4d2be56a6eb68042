//! Timestamp parsing for log lines: fixed-position parsers compiled from a Java/log4j date pattern
//! (`yyyy-MM-dd HH:mm:ss,SSS`), RFC 3339 / ISO 8601 with a zone, and epoch numbers; plus the
//! per-source time zone applied to zone-less local times.
//!
//! chrono's `parse_from_str` costs hundreds of nanoseconds per timestamp; these parsers read digits
//! at known positions and convert the civil date with integer arithmetic.

use std::cell::Cell;
use std::fmt;
use std::str::FromStr;

use chrono::{NaiveDate, Offset, TimeZone};

use crate::error::Error;

/// The zone a source's zone-less timestamps are in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Tz {
    /// UTC (the default: collected logs are compared across machines, never in the analyst's zone).
    #[default]
    Utc,
    /// A fixed offset from UTC, in seconds (east positive).
    Fixed(i32),
    /// An IANA zone (daylight saving applied per timestamp).
    Named(chrono_tz::Tz),
}

impl FromStr for Tz {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        let t = s.trim();
        if t.eq_ignore_ascii_case("utc") || t == "Z" || t.eq_ignore_ascii_case("gmt") {
            return Ok(Tz::Utc);
        }
        if let Some(off) = parse_offset(t.as_bytes()) {
            return Ok(Tz::Fixed(off.0));
        }
        t.parse::<chrono_tz::Tz>().map(Tz::Named).map_err(|_| {
            Error::Time(format!(
                "unknown time zone {t:?} (use UTC, an offset like +02:00, or an IANA name like Europe/Berlin)"
            ))
        })
    }
}

impl fmt::Display for Tz {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tz::Utc => f.write_str("UTC"),
            Tz::Fixed(s) => {
                let sign = if *s < 0 { '-' } else { '+' };
                let a = s.unsigned_abs();
                write!(f, "{sign}{:02}:{:02}", a / 3600, (a % 3600) / 60)
            }
            Tz::Named(z) => write!(f, "{}", z.name()),
        }
    }
}

/// Civil date-time fields as read from a line, before zone conversion.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Civil {
    /// Year.
    pub year: i32,
    /// Month 1-12.
    pub month: u32,
    /// Day 1-31.
    pub day: u32,
    /// Hour 0-23.
    pub hour: u32,
    /// Minute 0-59.
    pub minute: u32,
    /// Second 0-60.
    pub second: u32,
    /// Nanoseconds.
    pub nanos: u32,
    /// Offset from UTC stated in the text, in seconds, if any.
    pub offset: Option<i32>,
    /// The text had no year (syslog's `Nov 24 22:02:29`): `year` is to be chosen by the reader.
    pub no_year: bool,
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i32, m: u32, d: u32) -> i64 {
    let y = i64::from(y) - i64::from(m <= 2);
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

impl Civil {
    fn valid(&self) -> bool {
        (1..=12).contains(&self.month)
            && (1..=31).contains(&self.day)
            && self.hour < 24
            && self.minute < 60
            && self.second <= 60
    }

    /// True when the fields name a real instant (a valid date and time), whatever the zone.
    pub fn readable(&self) -> bool {
        ZoneConverter::new(Tz::Utc).to_nanos(self).is_some()
    }

    /// Nanoseconds since the Unix epoch of these fields read as UTC (ignoring any offset);
    /// `None` outside what an `i64` of nanoseconds holds (about 1677-09-21 to 2262-04-11).
    fn utc_nanos(&self) -> Option<i64> {
        let days = days_from_civil(self.year, self.month, self.day);
        let secs = days * 86_400
            + i64::from(self.hour) * 3600
            + i64::from(self.minute) * 60
            + i64::from(self.second);
        secs.checked_mul(1_000_000_000)?
            .checked_add(i64::from(self.nanos))
    }
}

/// Converts civil fields to UTC nanoseconds, caching the zone offset per local hour.
#[derive(Debug)]
pub struct ZoneConverter {
    tz: Tz,
    cache: Cell<(i64, i32)>,
}

impl ZoneConverter {
    /// A converter for zone-less timestamps in `tz`.
    pub fn new(tz: Tz) -> Self {
        ZoneConverter {
            tz,
            cache: Cell::new((i64::MIN, 0)),
        }
    }

    /// UTC nanoseconds for `c`; a stated offset wins over the source's zone.
    pub fn to_nanos(&self, c: &Civil) -> Option<i64> {
        if c.no_year {
            return self.yearless(c);
        }
        if !c.valid() {
            return None;
        }
        let local = c.utc_nanos()?;
        let off = match (c.offset, self.tz) {
            (Some(o), _) => o,
            (None, Tz::Utc) => 0,
            (None, Tz::Fixed(o)) => o,
            (None, Tz::Named(z)) => {
                let hour_key = local.div_euclid(3_600_000_000_000);
                let (k, o) = self.cache.get();
                if k == hour_key {
                    o
                } else {
                    let nd = NaiveDate::from_ymd_opt(c.year, c.month, c.day)?
                        .and_hms_opt(c.hour, 0, 0)?;
                    let o = z
                        .offset_from_local_datetime(&nd)
                        .earliest()
                        .map(|o| o.fix().local_minus_utc())
                        .unwrap_or(0);
                    self.cache.set((hour_key, o));
                    o
                }
            }
        };
        local.checked_sub(i64::from(off) * 1_000_000_000)
    }
}

impl ZoneConverter {
    /// A time written without its year: the latest year that does not put it more than a day
    /// in the future (how syslog readers date `Nov 24 22:02:29`).
    fn yearless(&self, c: &Civil) -> Option<i64> {
        let now = super::now_nanos();
        let this_year = civil_from_nanos(now).year;
        for year in [this_year, this_year - 1] {
            let mut d = *c;
            d.no_year = false;
            d.year = year;
            if let Some(t) = self.to_nanos(&d) {
                if t <= now.saturating_add(86_400_000_000_000) {
                    return Some(t);
                }
            }
        }
        None
    }
}

/// One element of a compiled date pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    /// `yyyy`
    Year,
    /// `MM`
    Month,
    /// `dd`
    Day,
    /// `HH`
    Hour,
    /// `mm`
    Minute,
    /// `ss`
    Second,
    /// `MMM`: an English month abbreviation (`Nov`), any case.
    MonthName,
    /// `d` (one letter): a day of one or two digits, or two characters padded with a space
    /// (syslog's `Nov  4`).
    DayPadded,
    /// Fraction with exactly this many digits.
    Fraction(usize),
    /// `X`/`XXX`/`Z`: an offset like `Z`, `+0200`, `+02:00`.
    Zone,
    /// A literal byte; `,` and `.` are interchangeable before a fraction.
    Lit(u8),
}

/// A compiled timestamp format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TimeFormat {
    /// A fixed pattern compiled from Java `SimpleDateFormat` letters.
    Pattern(Vec<Part>),
    /// RFC 3339 / ISO 8601: `2026-11-24T22:02:29.123Z`, `2026-11-24 22:02:29,123+01:00`, fraction
    /// of any length, optional zone.
    Iso8601,
    /// Seconds since the epoch, optionally fractional.
    EpochSeconds,
    /// Milliseconds since the epoch.
    EpochMillis,
}

impl TimeFormat {
    /// Compiles a format name or Java date pattern: `ISO8601` (log4j's `yyyy-MM-dd HH:mm:ss,SSS`),
    /// `RFC3339`, `epoch`, `epoch_ms`, or letters `yyyy MM MMM dd d HH mm ss SSS XXX` with
    /// literals (quoted text in `'...'`). A pattern without `yyyy` (syslog's `MMM d HH:mm:ss`)
    /// leaves the year to the [`ZoneConverter`]: the latest year that does not put the time in
    /// the future.
    pub fn compile(spec: &str) -> Result<TimeFormat, String> {
        match spec {
            "ISO8601" | "" => return TimeFormat::compile("yyyy-MM-dd HH:mm:ss,SSS"),
            "RFC3339" | "iso8601" | "rfc3339" => return Ok(TimeFormat::Iso8601),
            "epoch" | "epoch_s" => return Ok(TimeFormat::EpochSeconds),
            "epoch_ms" => return Ok(TimeFormat::EpochMillis),
            _ => {}
        }
        let b = spec.as_bytes();
        let mut parts = Vec::new();
        let mut i = 0;
        while i < b.len() {
            let c = b[i];
            let run = b[i..].iter().take_while(|&&x| x == c).count();
            match c {
                b'y' if run == 4 => parts.push(Part::Year),
                b'M' if run == 2 => parts.push(Part::Month),
                b'M' if run == 3 => parts.push(Part::MonthName),
                b'd' if run == 2 => parts.push(Part::Day),
                b'd' if run == 1 => parts.push(Part::DayPadded),
                b'H' if run == 2 => parts.push(Part::Hour),
                b'm' if run == 2 => parts.push(Part::Minute),
                b's' if run == 2 => parts.push(Part::Second),
                b'S' if run <= 9 => parts.push(Part::Fraction(run)),
                b'X' | b'Z' if run <= 3 => parts.push(Part::Zone),
                b'\'' => {
                    let end = b[i + 1..]
                        .iter()
                        .position(|&x| x == b'\'')
                        .ok_or_else(|| format!("unterminated quote in date pattern {spec:?}"))?;
                    parts.extend(b[i + 1..i + 1 + end].iter().map(|&x| Part::Lit(x)));
                    i += end + 2;
                    continue;
                }
                c if c.is_ascii_alphabetic() => {
                    return Err(format!(
                        "unsupported date pattern letters {:?} in {spec:?}",
                        &spec[i..i + run]
                    ))
                }
                c => {
                    parts.extend(std::iter::repeat_n(Part::Lit(c), run));
                }
            }
            i += run;
        }
        Ok(TimeFormat::Pattern(parts))
    }

    /// True when every timestamp in this format starts with an ASCII digit (a quick reject for
    /// lines that cannot start with one).
    pub fn starts_with_digit(&self) -> bool {
        match self {
            TimeFormat::Pattern(parts) => matches!(
                parts.first(),
                Some(
                    Part::Year
                        | Part::Month
                        | Part::Day
                        | Part::Hour
                        | Part::Minute
                        | Part::Second
                        | Part::Fraction(_)
                )
            ),
            TimeFormat::Iso8601 | TimeFormat::EpochSeconds | TimeFormat::EpochMillis => true,
        }
    }

    /// Parses a timestamp at the start of `s`; returns the fields and the number of bytes used.
    pub fn parse_prefix(&self, s: &[u8]) -> Option<(Civil, usize)> {
        match self {
            TimeFormat::Pattern(parts) => parse_pattern(parts, s),
            TimeFormat::Iso8601 => parse_iso(s),
            TimeFormat::EpochSeconds | TimeFormat::EpochMillis => {
                let n = s
                    .iter()
                    .take_while(|c| c.is_ascii_digit() || **c == b'.')
                    .count();
                let txt = std::str::from_utf8(&s[..n]).ok()?;
                let v: f64 = txt.parse().ok()?;
                let nanos = if *self == TimeFormat::EpochMillis {
                    nanos_from_f64(v * 1e6)?
                } else {
                    nanos_from_f64(v * 1e9)?
                };
                Some((civil_from_nanos(nanos), n))
            }
        }
    }
}

/// Nanoseconds held in an `f64`, as an `i64`: `None` when not finite or outside the range an
/// `i64` holds (a cast would silently clamp it to 1677 or 2262).
pub fn nanos_from_f64(v: f64) -> Option<i64> {
    // 2^63 is exactly representable; every f64 below it in magnitude fits an i64.
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    (v.is_finite() && v > -LIMIT && v < LIMIT).then_some(v as i64)
}

/// Civil UTC fields of a nanosecond timestamp (offset 0).
pub fn civil_from_nanos(n: i64) -> Civil {
    let secs = n.div_euclid(1_000_000_000);
    let nanos = n.rem_euclid(1_000_000_000) as u32;
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = (yoe + era * 400 + i64::from(m <= 2)) as i32;
    Civil {
        year: y,
        month: m,
        day: d,
        hour: (sod / 3600) as u32,
        minute: ((sod % 3600) / 60) as u32,
        second: (sod % 60) as u32,
        nanos,
        offset: Some(0),
        no_year: false,
    }
}

#[inline]
fn digits(s: &[u8], at: usize, n: usize) -> Option<u32> {
    let d = s.get(at..at + n)?;
    let mut v = 0u32;
    for &c in d {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + u32::from(c - b'0');
    }
    Some(v)
}

fn parse_pattern(parts: &[Part], s: &[u8]) -> Option<(Civil, usize)> {
    let mut c = Civil {
        no_year: !parts.contains(&Part::Year),
        ..Civil::default()
    };
    let mut i = 0;
    for p in parts {
        match p {
            Part::Year => {
                c.year = digits(s, i, 4)? as i32;
                i += 4;
            }
            Part::Month => {
                c.month = digits(s, i, 2)?;
                i += 2;
            }
            Part::Day => {
                c.day = digits(s, i, 2)?;
                i += 2;
            }
            Part::DayPadded => {
                let (d, used) = match (s.get(i), s.get(i + 1)) {
                    (Some(b' '), _) => (digits(s, i + 1, 1)?, 2),
                    (_, Some(b'0'..=b'9')) => (digits(s, i, 2)?, 2),
                    _ => (digits(s, i, 1)?, 1),
                };
                c.day = d;
                i += used;
            }
            Part::MonthName => {
                c.month = month_name(s.get(i..i + 3)?)?;
                i += 3;
            }
            Part::Hour => {
                c.hour = digits(s, i, 2)?;
                i += 2;
            }
            Part::Minute => {
                c.minute = digits(s, i, 2)?;
                i += 2;
            }
            Part::Second => {
                c.second = digits(s, i, 2)?;
                i += 2;
            }
            Part::Fraction(n) => {
                let v = digits(s, i, *n)?;
                c.nanos = v * 10u32.pow(9 - *n as u32);
                i += n;
            }
            Part::Zone => {
                let (off, used) = parse_offset(&s[i..])?;
                c.offset = Some(off);
                i += used;
            }
            Part::Lit(l) => {
                let got = *s.get(i)?;
                let ok = got == *l || (matches!(l, b',' | b'.') && matches!(got, b',' | b'.'));
                if !ok {
                    return None;
                }
                i += 1;
            }
        }
    }
    Some((c, i))
}

/// The month (1-12) of an English three-letter abbreviation, any case.
fn month_name(b: &[u8]) -> Option<u32> {
    const NAMES: [&[u8; 3]; 12] = [
        b"jan", b"feb", b"mar", b"apr", b"may", b"jun", b"jul", b"aug", b"sep", b"oct", b"nov",
        b"dec",
    ];
    let l = [
        b.first()?.to_ascii_lowercase(),
        b.get(1)?.to_ascii_lowercase(),
        b.get(2)?.to_ascii_lowercase(),
    ];
    NAMES.iter().position(|n| **n == l).map(|i| i as u32 + 1)
}

/// Parses `Z`, `+02`, `+0200`, `+02:00` at the start of `s`: (seconds east, bytes used).
fn parse_offset(s: &[u8]) -> Option<(i32, usize)> {
    match s.first()? {
        b'Z' | b'z' => Some((0, 1)),
        sign @ (b'+' | b'-') => {
            let h = digits(s, 1, 2)? as i32;
            let (m, used) = if s.get(3) == Some(&b':') {
                (digits(s, 4, 2)? as i32, 6)
            } else if let Some(m) = digits(s, 3, 2) {
                (m as i32, 5)
            } else {
                (0, 3)
            };
            if h > 23 || m > 59 {
                return None;
            }
            let off = h * 3600 + m * 60;
            Some((if *sign == b'-' { -off } else { off }, used))
        }
        _ => None,
    }
}

fn parse_iso(s: &[u8]) -> Option<(Civil, usize)> {
    let mut c = Civil {
        year: digits(s, 0, 4)? as i32,
        ..Civil::default()
    };
    if s.get(4) != Some(&b'-') || s.get(7) != Some(&b'-') {
        return None;
    }
    c.month = digits(s, 5, 2)?;
    c.day = digits(s, 8, 2)?;
    if !matches!(s.get(10), Some(b'T' | b't' | b' ')) {
        return None;
    }
    c.hour = digits(s, 11, 2)?;
    if s.get(13) != Some(&b':') {
        return None;
    }
    c.minute = digits(s, 14, 2)?;
    if s.get(16) != Some(&b':') {
        return None;
    }
    c.second = digits(s, 17, 2)?;
    let mut i = 19;
    if matches!(s.get(i), Some(b'.' | b',')) {
        let n = s[i + 1..].iter().take_while(|b| b.is_ascii_digit()).count();
        if n == 0 {
            return None;
        }
        let take = n.min(9);
        let v = digits(s, i + 1, take)?;
        c.nanos = v * 10u32.pow(9 - take as u32);
        i += 1 + n;
    }
    if let Some((off, used)) = s.get(i..).and_then(parse_offset) {
        c.offset = Some(off);
        i += used;
    }
    Some((c, i))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::DateTime;

    fn nanos_of(rfc: &str) -> i64 {
        DateTime::parse_from_rfc3339(rfc)
            .map(|d| d.timestamp_nanos_opt().unwrap_or(0))
            .unwrap_or(0)
    }

    #[test]
    fn log4j_iso8601_matches_chrono() {
        let f = TimeFormat::compile("ISO8601").expect("compiles");
        let (c, used) = f
            .parse_prefix(b"2026-11-24 22:02:29,123 [myid:1]")
            .expect("parses");
        assert_eq!(used, 23);
        let z = ZoneConverter::new(Tz::Utc);
        assert_eq!(z.to_nanos(&c), Some(nanos_of("2026-11-24T22:02:29.123Z")));
        let berlin = ZoneConverter::new("Europe/Berlin".parse().expect("zone"));
        assert_eq!(
            berlin.to_nanos(&c),
            Some(nanos_of("2026-11-24T22:02:29.123+01:00"))
        );
        let summer = f
            .parse_prefix(b"2026-07-01 12:00:00,000")
            .expect("parses")
            .0;
        assert_eq!(
            berlin.to_nanos(&summer),
            Some(nanos_of("2026-07-01T12:00:00+02:00"))
        );
    }

    #[test]
    fn iso_with_zone_and_long_fraction() {
        let (c, used) = TimeFormat::Iso8601
            .parse_prefix(b"2026-11-24T22:02:29.123456789-05:30 rest")
            .expect("parses");
        assert_eq!(used, 35);
        let z = ZoneConverter::new(Tz::Utc);
        assert_eq!(
            z.to_nanos(&c),
            Some(nanos_of("2026-11-24T22:02:29.123456789-05:30"))
        );
    }

    #[test]
    fn rejects_garbage_and_bad_fields() {
        let f = TimeFormat::compile("ISO8601").expect("compiles");
        assert!(f.parse_prefix(b"2026-1x-24 22:02:29,123").is_none());
        assert!(f.parse_prefix(b"short").is_none());
        let (c, _) = f.parse_prefix(b"2026-13-24 22:02:29,123").expect("digits");
        assert_eq!(ZoneConverter::new(Tz::Utc).to_nanos(&c), None);
    }

    #[test]
    fn civil_roundtrip() {
        for n in [
            0i64,
            1_764_021_749_123_000_000,
            -86_400_000_000_000,
            951_782_400_000_000_000,
        ] {
            let c = civil_from_nanos(n);
            assert_eq!(ZoneConverter::new(Tz::Utc).to_nanos(&c), Some(n));
        }
    }

    #[test]
    fn zones_parse() {
        assert_eq!("UTC".parse::<Tz>().ok(), Some(Tz::Utc));
        assert_eq!("+02:00".parse::<Tz>().ok(), Some(Tz::Fixed(7200)));
        assert_eq!("-0130".parse::<Tz>().ok(), Some(Tz::Fixed(-5400)));
        assert!("Mars/Olympus".parse::<Tz>().is_err());
    }
}
