//! The clock lease reads stamp entries with and compare them against.
//!
//! A reading is the Unix time (microseconds) at the first reading in this process, plus
//! the tokio clock's advance since: monotonic (no jumps when NTP steps the wall clock),
//! comparable between processes whose wall clocks agree, and, under a paused tokio clock
//! (tests), virtual time, so every peer of a test runtime reads the same clock and leases
//! last as long as the timers they are compared with.

use std::sync::OnceLock;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

static ANCHOR: OnceLock<(u64, Instant)> = OnceLock::new();

/// The lease clock now, in microseconds.
pub(crate) fn now_micros() -> u64 {
    let (wall, mono) = *ANCHOR.get_or_init(|| {
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
        (wall, Instant::now())
    });
    let now = tokio::time::Instant::now().into_std();
    // A paused test runtime's clock may start before the anchor: count signed.
    let delta = match now.checked_duration_since(mono) {
        Some(d) => i128::try_from(d.as_micros()).unwrap_or(i128::MAX),
        None => -i128::try_from(mono.duration_since(now).as_micros()).unwrap_or(i128::MAX),
    };
    u64::try_from((i128::from(wall) + delta).max(0)).unwrap_or(u64::MAX)
}
