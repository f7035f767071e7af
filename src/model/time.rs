//! Time: epoch milliseconds everywhere; ISO dates accepted on input.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;

use crate::error::{Error, Result};
use crate::model::id::{Dim, Id};

/// Milliseconds since the Unix epoch.
pub type Millis = i64;

pub fn now_ms() -> Millis {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Where the engine's timestamps come from — record and event times and
/// the creation time inside every new id (event time ranges are id
/// ranges): the system clock, or a manual clock that tests set and move
/// themselves, so they get distinct or chosen times without sleeping.
/// Clones share the same time.
#[derive(Clone, Default)]
pub struct Clock {
    manual: Option<Arc<Manual>>,
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.manual {
            Some(m) => write!(f, "Clock::manual({})", m.now.load(Ordering::SeqCst)),
            None => f.write_str("Clock::system()"),
        }
    }
}

struct Manual {
    now: AtomicI64,
    /// Ids stamped with the manual time, increasing like the system's.
    ids: Mutex<ulid::Generator>,
}

impl Clock {
    /// The system's wall clock (the default).
    pub fn system() -> Clock {
        Clock::default()
    }

    /// A clock that stands at `start` until it is moved.
    pub fn manual(start: Millis) -> Clock {
        Clock {
            manual: Some(Arc::new(Manual {
                now: AtomicI64::new(start),
                ids: Mutex::new(ulid::Generator::new()),
            })),
        }
    }

    pub fn now(&self) -> Millis {
        match &self.manual {
            Some(m) => m.now.load(Ordering::SeqCst),
            None => now_ms(),
        }
    }

    /// Moves a manual clock by `ms`; the system clock moves by itself and
    /// ignores this.
    pub fn advance(&self, ms: Millis) {
        if let Some(m) = &self.manual {
            m.now.fetch_add(ms, Ordering::SeqCst);
        }
    }

    /// A new id made at this clock's time, greater than every id the clock
    /// made before.
    pub fn new_id(&self, dim: Dim) -> Id {
        let Some(m) = &self.manual else {
            return Id::generate(dim);
        };
        let at = UNIX_EPOCH + Duration::from_millis(m.now.load(Ordering::SeqCst).max(0) as u64);
        // Fails only after 2^80 ids in one millisecond.
        let ulid = m
            .ids
            .lock()
            .generate_from_datetime(at)
            .unwrap_or_else(|_| ulid::Ulid::from_datetime(at));
        Id::from_raw(dim, ulid.0)
    }
}

/// Parses `YYYY-MM-DD`, `YYYY-MM-DDTHH:MM[:SS[.fff]]` with an optional `Z`
/// (UTC; offsets are not accepted, to keep one meaning per text).
pub fn parse_iso(text: &str) -> Result<Millis> {
    let bad = || Error::invalid(format!("not an ISO date or date-time: {text:?}"));
    let text = text.strip_suffix('Z').unwrap_or(text);
    let (date, time) = match text.split_once(['T', ' ']) {
        Some((d, t)) => (d, Some(t)),
        None => (text, None),
    };
    let mut parts = date.splitn(3, '-');
    let year: i64 = num(parts.next(), 4).ok_or_else(bad)?;
    let month: i64 = num(parts.next(), 2).ok_or_else(bad)?;
    let day: i64 = num(parts.next(), 2).ok_or_else(bad)?;
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return Err(bad());
    }
    let mut millis = days_from_civil(year, month, day) * 86_400_000;
    if let Some(time) = time {
        let (hms, frac) = match time.split_once('.') {
            Some((hms, frac)) => (hms, Some(frac)),
            None => (time, None),
        };
        let mut parts = hms.split(':');
        let h: i64 = num(parts.next(), 2).ok_or_else(bad)?;
        let m: i64 = num(parts.next(), 2).ok_or_else(bad)?;
        let s: i64 = match parts.next() {
            Some(s) => num(Some(s), 2).ok_or_else(bad)?,
            None => 0,
        };
        if parts.next().is_some() || h > 23 || m > 59 || s > 59 {
            return Err(bad());
        }
        let ms = match frac {
            Some(f) if !f.is_empty() && f.len() <= 3 && f.bytes().all(|b| b.is_ascii_digit()) => {
                f.parse::<i64>().map_err(|_| bad())? * 10_i64.pow(3 - f.len() as u32)
            }
            Some(_) => return Err(bad()),
            None => 0,
        };
        millis += ((h * 60 + m) * 60 + s) * 1000 + ms;
    }
    Ok(millis)
}

/// `YYYY-MM` of a time, for counters kept per month.
pub fn month_of(millis: Millis) -> String {
    let (y, m, _) = civil_from_days(millis.div_euclid(86_400_000));
    format!("{y:04}-{m:02}")
}

/// `millis` as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn iso_of(millis: Millis) -> String {
    let (y, m, d) = civil_from_days(millis.div_euclid(86_400_000));
    let secs = millis.rem_euclid(86_400_000) / 1000;
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

fn num(part: Option<&str>, width: usize) -> Option<i64> {
    let part = part?;
    (part.len() == width && part.bytes().all(|b| b.is_ascii_digit()))
        .then(|| part.parse().ok())
        .flatten()
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

// Howard Hinnant's civil-date algorithms.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_dates_and_date_times() {
        assert_eq!(parse_iso("1970-01-01"), Ok(0));
        assert_eq!(parse_iso("2025-01-01"), Ok(1_735_689_600_000));
        assert_eq!(parse_iso("2025-01-01T00:00:01Z"), Ok(1_735_689_601_000));
        assert_eq!(parse_iso("2025-01-01T00:00:01.5"), Ok(1_735_689_601_500));
        assert_eq!(parse_iso("2024-02-29"), Ok(1_709_164_800_000));
        assert_eq!(month_of(1_735_689_600_000), "2025-01");
        assert_eq!(iso_of(1_735_689_601_500), "2025-01-01T00:00:01Z");
    }

    #[test]
    fn rejects_impossible_dates() {
        for bad in [
            "",
            "2025",
            "2025-13-01",
            "2023-02-29",
            "2025-01-01T24:00",
            "25-01-01",
            "2025-01-01T10:00:00.1234",
        ] {
            assert!(parse_iso(bad).is_err(), "{bad}");
        }
    }
}
