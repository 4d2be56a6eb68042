//! Time-ordered event windows, found by binary search: the detectors look around each formation,
//! loss or expiry without scanning the whole log.

use crate::event::Event;

/// An event's time, 0 when it has none (the detectors see only timed events).
pub fn ts(e: &Event) -> i64 {
    e.ts.unwrap_or(0)
}

/// The events of `ev` (in time order) with `lo <= ts <= hi`.
pub fn span<'e, 'a>(ev: &'e [&'a Event], lo: i64, hi: i64) -> &'e [&'a Event] {
    let a = ev.partition_point(|e| ts(e) < lo);
    let b = ev.partition_point(|e| ts(e) <= hi).max(a);
    &ev[a..b]
}

/// The events of `ev` (in time order) from `lo` on.
pub fn from<'e, 'a>(ev: &'e [&'a Event], lo: i64) -> &'e [&'a Event] {
    &ev[ev.partition_point(|e| ts(e) < lo)..]
}

/// The events of `ev` (in time order) before `t`.
pub fn before<'e, 'a>(ev: &'e [&'a Event], t: i64) -> &'e [&'a Event] {
    &ev[..ev.partition_point(|e| ts(e) < t)]
}
