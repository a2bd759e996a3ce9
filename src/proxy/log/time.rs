//! Broken-down dates for log lines. HAProxy prints local time in syslog
//! headers and `%t`/`%tr`, and GMT in `%trg`/`%T`; the C library does the time
//! zone work, as it does for HAProxy, so both agree on the same machine.

use std::time::{SystemTime, UNIX_EPOCH};

pub(super) const MONTHS: [&str; 12] =
    ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Tm {
    pub year: i32,
    /// 0..=11
    pub month: usize,
    pub day: u32,
    pub hour: u32,
    pub min: u32,
    pub sec: u32,
    pub millis: u32,
    pub micros: u32,
    /// Offset from UTC in seconds (0 for GMT).
    pub utc_offset: i64,
}

impl Tm {
    pub fn month_name(&self) -> &'static str {
        MONTHS.get(self.month).copied().unwrap_or("???")
    }
}

fn split(t: SystemTime) -> (libc::time_t, u32) {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = libc::time_t::try_from(d.as_secs()).unwrap_or(libc::time_t::MAX);
    (secs, d.subsec_micros())
}

// `tm_gmtoff` is a C long: i64 here, i32 on 32-bit targets.
#[allow(clippy::useless_conversion)]
fn from_libc(tm: &libc::tm, micros: u32) -> Tm {
    let u = |v: libc::c_int| u32::try_from(v).unwrap_or(0);
    Tm {
        year: tm.tm_year + 1900,
        month: usize::try_from(tm.tm_mon).unwrap_or(0),
        day: u(tm.tm_mday),
        hour: u(tm.tm_hour),
        min: u(tm.tm_min),
        sec: u(tm.tm_sec),
        millis: micros / 1000,
        micros,
        utc_offset: i64::from(tm.tm_gmtoff),
    }
}

pub(super) fn local(t: SystemTime) -> Tm {
    let (secs, micros) = split(t);
    // SAFETY: localtime_r only writes into the `tm` we own; a zeroed libc::tm
    // is a valid value (integers and a null zone pointer).
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    let ok = unsafe { !libc::localtime_r(&secs, &mut tm).is_null() };
    if !ok {
        return gmt(t);
    }
    from_libc(&tm, micros)
}

pub(super) fn gmt(t: SystemTime) -> Tm {
    let (secs, micros) = split(t);
    // SAFETY: as above, gmtime_r writes only into our `tm`.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    unsafe { libc::gmtime_r(&secs, &mut tm) };
    from_libc(&tm, micros)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn gmt_breakdown() {
        // 2026-11-21T10:12:13.123Z
        let t = UNIX_EPOCH + Duration::from_millis(1_795_255_933_123);
        let tm = gmt(t);
        assert_eq!((tm.year, tm.month_name(), tm.day), (2026, "Nov", 21));
        assert_eq!((tm.hour, tm.min, tm.sec, tm.millis, tm.micros), (10, 12, 13, 123, 123_000));
        assert_eq!(tm.utc_offset, 0);
    }
}
