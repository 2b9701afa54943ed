//! Timestamp text of the common layouts to nanoseconds (`_core.parse_layout`).
//!
//! Each layout reads only text of its exact shape (fully anchored, a year nanoseconds can hold:
//! 1700-2259, seconds below 60); every other row is left to the general path in
//! `pmtimeline.connectors.timeformats`, which flags out-of-range years and refuses `:60`. A row of the
//! shape whose date or time does not exist (`Feb 30`, `25:00:00`, an offset of a day or more) is NaT.

use std::sync::Arc;

use arrow_array::{ArrayRef, BooleanArray, Int64Array};
use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use rayon::prelude::*;

use crate::arrow_out::{import_array, string_rows, ArrowBatch};
use crate::guard::guarded;

/// The year given to year-less text (`timeformats.PLACEHOLDER_YEAR`, a leap year so `Feb 29` parses).
pub const PLACEHOLDER_YEAR: i32 = 2000;

const MONTHS: [&[u8; 3]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

/// The layouts this module reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// `2024-03-01T12:00:00[.,fraction][Z|+hh|+hhmm|+hh:mm]` (`T` or a space).
    Iso,
    /// `10/Oct/2000:13:55:36[ -0700]` (access logs).
    Access,
    /// `Mar  1 00:00:00[.fraction]` / `Mar 01 ...` (syslog, no year).
    Syslog,
    /// `[Www ]Mmm dd HH:MM:SS[.fraction] YYYY` (C `ctime`, Apache error logs), after
    /// `timeformats._pad_day` made the day two digits and the gaps one space.
    Ctime,
    /// `yymmdd HHMMSS` (HDFS); two-digit years 69-99 are 19xx, 00-68 are 20xx (as strptime).
    Compact,
}

impl Layout {
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "iso" => Some(Self::Iso),
            "access" => Some(Self::Access),
            "syslog" => Some(Self::Syslog),
            "ctime" => Some(Self::Ctime),
            "compact" => Some(Self::Compact),
            _ => None,
        }
    }
}

/// What one row reads as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reading {
    /// The text does not have the layout's shape.
    Unfit,
    /// The shape, but no such date or time.
    Invalid,
    /// A wall-clock time without an offset, in ns since 1970 (as if UTC).
    Naive(i64),
    /// A time with an offset, in UTC ns since 1970.
    Utc(i64),
}

fn digit(byte: u8) -> Option<u32> {
    byte.is_ascii_digit().then(|| u32::from(byte - b'0'))
}

/// A number of `n` ASCII digits at `at`.
fn number(bytes: &[u8], at: usize, n: usize) -> Option<u32> {
    let field = bytes.get(at..at + n)?;
    field
        .iter()
        .try_fold(0u32, |value, &byte| Some(value * 10 + digit(byte)?))
}

/// A year nanoseconds can hold, as the shapes spell it: `1[7-9]dd|2[01]dd|22[0-5]d`.
fn safe_year(bytes: &[u8], at: usize) -> Option<i32> {
    let year = number(bytes, at, 4)?;
    (1700..=2259).contains(&year).then_some(year as i32)
}

/// `[0-2][0-9]:[0-5][0-9]:[0-5][0-9]` at `at`: (hour, minute, second).
fn safe_clock(bytes: &[u8], at: usize) -> Option<(u32, u32, u32)> {
    let clock = bytes.get(at..at + 8)?;
    if clock[2] != b':' || clock[5] != b':' || clock[0] > b'2' || clock[3] > b'5' || clock[6] > b'5'
    {
        return None;
    }
    Some((
        number(clock, 0, 2)?,
        number(clock, 3, 2)?,
        number(clock, 6, 2)?,
    ))
}

/// A fraction of 1 to 9 digits at `at` (after its separator): (nanoseconds, end).
fn fraction(bytes: &[u8], at: usize) -> Option<(u32, usize)> {
    let digits = bytes[at.min(bytes.len())..]
        .iter()
        .take_while(|byte| byte.is_ascii_digit())
        .count();
    if !(1..=9).contains(&digits) {
        return None;
    }
    let value = number(bytes, at, digits)?;
    Some((value * 10u32.pow((9 - digits) as u32), at + digits))
}

fn month(name: &[u8]) -> Option<u32> {
    MONTHS
        .iter()
        .position(|candidate| candidate.as_slice() == name)
        .map(|index| index as u32 + 1)
}

/// Nanoseconds of a wall-clock time, or None where the date or time does not exist.
fn wall_nanos(fields: (i32, u32, u32), clock: (u32, u32, u32), nanos: u32) -> Option<i64> {
    let date = NaiveDate::from_ymd_opt(fields.0, fields.1, fields.2)?;
    let time = NaiveTime::from_hms_nano_opt(clock.0, clock.1, clock.2, nanos)?;
    NaiveDateTime::new(date, time)
        .and_utc()
        .timestamp_nanos_opt()
}

/// An offset east of UTC in seconds, or None where it is not one (minutes from 60, a day or more).
fn offset_seconds(negative: bool, hours: u32, minutes: u32) -> Option<i64> {
    if minutes >= 60 {
        return None;
    }
    let seconds = i64::from(hours * 3600 + minutes * 60);
    (seconds < 86_400).then_some(if negative { -seconds } else { seconds })
}

fn finish(wall: Option<i64>, offset: Option<Option<i64>>) -> Reading {
    match (wall, offset) {
        (None, _) | (_, Some(None)) => Reading::Invalid,
        (Some(nanos), None) => Reading::Naive(nanos),
        (Some(nanos), Some(Some(seconds))) => Reading::Utc(nanos - seconds * 1_000_000_000),
    }
}

/// The ISO 8601 shape: `YYYY-MM-DD[T ]HH:MM:SS([.,]f{1,9})?(Z|[+-]hh(:?mm)?)?`.
fn read_iso(bytes: &[u8]) -> Reading {
    let Some(year) = safe_year(bytes, 0) else {
        return Reading::Unfit;
    };
    let date = (|| {
        (bytes.get(4) == Some(&b'-') && bytes.get(7) == Some(&b'-')).then_some(())?;
        matches!(bytes.get(10), Some(b'T' | b' ')).then_some(())?;
        Some((
            number(bytes, 5, 2)?,
            number(bytes, 8, 2)?,
            safe_clock(bytes, 11)?,
        ))
    })();
    let Some((month, day, clock)) = date else {
        return Reading::Unfit;
    };
    let mut at = 19;
    let mut nanos = 0;
    if matches!(bytes.get(at), Some(b'.' | b',')) {
        match fraction(bytes, at + 1) {
            Some((value, end)) => (nanos, at) = (value, end),
            None => return Reading::Unfit,
        }
    }
    let rest = &bytes[at.min(bytes.len())..];
    let offset = match rest {
        [] => None,
        [b'Z'] => Some(Some(0)),
        [sign @ (b'+' | b'-'), zone @ ..] => {
            let negative = *sign == b'-';
            let (hours, minutes) = match zone.len() {
                2 => (number(zone, 0, 2), Some(0)),
                4 => (number(zone, 0, 2), number(zone, 2, 2)),
                5 if zone[2] == b':' => (number(zone, 0, 2), number(zone, 3, 2)),
                _ => (None, None),
            };
            match (hours, minutes) {
                (Some(hours), Some(minutes)) => Some(offset_seconds(negative, hours, minutes)),
                _ => return Reading::Unfit,
            }
        }
        _ => return Reading::Unfit,
    };
    finish(wall_nanos((year, month, day), clock, nanos), offset)
}

/// The access-log shape: `dd/Mon/YYYY:HH:MM:SS( [+-]hhmm)?`.
fn read_access(bytes: &[u8]) -> Reading {
    let fields = (|| {
        let day = number(bytes, 0, 2)?;
        (bytes.get(2) == Some(&b'/')
            && bytes.get(6) == Some(&b'/')
            && bytes.get(11) == Some(&b':'))
        .then_some(())?;
        let month = month(bytes.get(3..6)?)?;
        Some((safe_year(bytes, 7)?, month, day, safe_clock(bytes, 12)?))
    })();
    let Some((year, month, day, clock)) = fields else {
        return Reading::Unfit;
    };
    let offset = match &bytes[20.min(bytes.len())..] {
        [] => None,
        [b' ', sign @ (b'+' | b'-'), zone @ ..] if zone.len() == 4 => {
            match (number(zone, 0, 2), number(zone, 2, 2)) {
                (Some(hours), Some(minutes)) => Some(offset_seconds(*sign == b'-', hours, minutes)),
                _ => return Reading::Unfit,
            }
        }
        _ => return Reading::Unfit,
    };
    finish(wall_nanos((year, month, day), clock, 0), offset)
}

/// The syslog shape: `Mon (dd| d) HH:MM:SS(\.f{1,9})?`, in the placeholder year.
fn read_syslog(bytes: &[u8]) -> Reading {
    let fields = (|| {
        let month = month(bytes.get(0..3)?)?;
        (bytes.get(3) == Some(&b' ') && bytes.get(6) == Some(&b' ')).then_some(())?;
        let day = match bytes.get(4..6)? {
            [b' ', one] => digit(*one)?,
            _ => number(bytes, 4, 2)?,
        };
        Some((month, day, safe_clock(bytes, 7)?))
    })();
    let Some((month, day, clock)) = fields else {
        return Reading::Unfit;
    };
    let nanos = match &bytes[15.min(bytes.len())..] {
        [] => 0,
        [b'.', ..] => match fraction(bytes, 16) {
            Some((value, end)) if end == bytes.len() => value,
            _ => return Reading::Unfit,
        },
        _ => return Reading::Unfit,
    };
    finish(
        wall_nanos((PLACEHOLDER_YEAR, month, day), clock, nanos),
        None,
    )
}

/// The ctime shape: `([A-Z][a-z]{2} )?Mon dd HH:MM:SS(\.f{1,9})? YYYY`. The weekday is not checked
/// (it never was); a month name that is not one, an unsafe year or clock is left to the general path.
fn read_ctime(bytes: &[u8]) -> Reading {
    let is_name = |at: usize| {
        matches!(bytes.get(at..at + 4), Some([first, second, third, b' '])
            if first.is_ascii_uppercase() && second.is_ascii_lowercase() && third.is_ascii_lowercase())
    };
    let start = if is_name(0) && is_name(4) { 4 } else { 0 };
    let fields = (|| {
        is_name(start).then_some(())?;
        let month = month(bytes.get(start..start + 3)?)?;
        let day = number(bytes, start + 4, 2)?;
        (bytes.get(start + 6) == Some(&b' ')).then_some(())?;
        let clock = safe_clock(bytes, start + 7)?;
        let mut at = start + 15;
        let mut nanos = 0;
        if bytes.get(at) == Some(&b'.') {
            (nanos, at) = fraction(bytes, at + 1)?;
        }
        (bytes.get(at) == Some(&b' ') && bytes.len() == at + 5).then_some(())?;
        Some((safe_year(bytes, at + 1)?, month, day, clock, nanos))
    })();
    match fields {
        Some((year, month, day, clock, nanos)) => {
            finish(wall_nanos((year, month, day), clock, nanos), None)
        }
        None => Reading::Unfit,
    }
}

/// The compact shape: `yymmdd HHMMSS`; a clock the ISO shape would not take is left to the general path.
fn read_compact(bytes: &[u8]) -> Reading {
    let fields = (|| {
        (bytes.len() == 13 && bytes[6] == b' ').then_some(())?;
        let short = number(bytes, 0, 2)?;
        let year = if short >= 69 {
            1900 + short
        } else {
            2000 + short
        };
        let (month, day) = (number(bytes, 2, 2)?, number(bytes, 4, 2)?);
        let clock = [
            bytes[7], bytes[8], b':', bytes[9], bytes[10], b':', bytes[11], bytes[12],
        ];
        Some((year as i32, month, day, safe_clock(&clock, 0)?))
    })();
    match fields {
        Some((year, month, day, clock)) => finish(wall_nanos((year, month, day), clock, 0), None),
        None => Reading::Unfit,
    }
}

/// Read one text in `layout`.
pub fn read(layout: Layout, text: &str) -> Reading {
    let bytes = text.as_bytes();
    match layout {
        Layout::Iso => read_iso(bytes),
        Layout::Access => read_access(bytes),
        Layout::Syslog => read_syslog(bytes),
        Layout::Ctime => read_ctime(bytes),
        Layout::Compact => read_compact(bytes),
    }
}

/// Text of `layout` read into nanoseconds: a batch of `fits` (the row has the layout's shape),
/// `utc` (int64 ns, where the text had an offset) and `naive` (int64 ns of the wall-clock time,
/// where it had none). A row that fits with both null is no real date or time.
#[pyfunction]
pub fn parse_layout(py: Python<'_>, text: &Bound<'_, PyAny>, layout: &str) -> PyResult<ArrowBatch> {
    guarded(py, "parse_layout", || {
        let layout = Layout::from_name(layout)
            .ok_or_else(|| PyValueError::new_err(format!("unknown time layout {layout:?}")))?;
        let array = import_array(text)?;
        let rows = string_rows(&array)?;
        let readings: Vec<Reading> = py.detach(|| {
            rows.par_iter()
                .with_min_len(4096)
                .map(|row| row.map_or(Reading::Unfit, |text| read(layout, text)))
                .collect()
        });
        let fits: BooleanArray = readings
            .iter()
            .map(|r| Some(*r != Reading::Unfit))
            .collect();
        let utc: Int64Array = readings
            .iter()
            .map(|r| match r {
                Reading::Utc(nanos) => Some(*nanos),
                _ => None,
            })
            .collect();
        let naive: Int64Array = readings
            .iter()
            .map(|r| match r {
                Reading::Naive(nanos) => Some(*nanos),
                _ => None,
            })
            .collect();
        ArrowBatch::from_columns(vec![
            ("fits", Arc::new(fits) as ArrayRef),
            ("utc", Arc::new(utc) as ArrayRef),
            ("naive", Arc::new(naive) as ArrayRef),
        ])
        .map_err(|err| PyValueError::new_err(err.to_string()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Datelike, TimeZone, Timelike, Utc};
    use proptest::prelude::*;

    const NS: i64 = 1_000_000_000;

    #[test]
    fn iso_shapes() {
        assert_eq!(read(Layout::Iso, "1970-01-01T00:00:01"), Reading::Naive(NS));
        assert_eq!(
            read(Layout::Iso, "1970-01-01 00:00:01,5"),
            Reading::Naive(NS + NS / 2)
        );
        assert_eq!(read(Layout::Iso, "1970-01-01T01:00:00+01"), Reading::Utc(0));
        assert_eq!(
            read(Layout::Iso, "1970-01-01T01:00:00+01:00"),
            Reading::Utc(0)
        );
        assert_eq!(
            read(Layout::Iso, "1970-01-01T00:00:00-0130"),
            Reading::Utc(90 * 60 * NS)
        );
        assert_eq!(read(Layout::Iso, "1970-01-01T00:00:00Z"), Reading::Utc(0));
        assert_eq!(read(Layout::Iso, "1970-02-30T00:00:00"), Reading::Invalid);
        assert_eq!(read(Layout::Iso, "1970-01-01T24:00:00"), Reading::Invalid);
        assert_eq!(
            read(Layout::Iso, "1970-01-01T00:00:00+24:00"),
            Reading::Invalid
        );
        assert_eq!(
            read(Layout::Iso, "1970-01-01T00:00:00+01:60"),
            Reading::Invalid
        );
        assert_eq!(read(Layout::Iso, "1970-01-01T00:00:60"), Reading::Unfit);
        assert_eq!(read(Layout::Iso, "2262-01-01T00:00:00"), Reading::Unfit);
        assert_eq!(
            read(Layout::Iso, "1970-01-01T00:00:00.1234567890"),
            Reading::Unfit
        );
        assert_eq!(read(Layout::Iso, "1970-01-01T00:00:00."), Reading::Unfit);
        assert_eq!(read(Layout::Iso, "1970-01-01T00:00:00+1"), Reading::Unfit);
        assert_eq!(read(Layout::Iso, "1970-01-01T00:00:00 "), Reading::Unfit);
        assert_eq!(read(Layout::Iso, "1970-01-01T00:00:00UTC"), Reading::Unfit);
    }

    #[test]
    fn access_and_syslog_shapes() {
        assert_eq!(
            read(Layout::Access, "01/Jan/1970:00:00:01"),
            Reading::Naive(NS)
        );
        assert_eq!(
            read(Layout::Access, "01/Jan/1970:01:00:00 +0100"),
            Reading::Utc(0)
        );
        assert_eq!(
            read(Layout::Access, "01/jan/1970:01:00:00 +0100"),
            Reading::Unfit
        );
        assert_eq!(read(Layout::Access, "1/Jan/1970:01:00:00"), Reading::Unfit);
        assert_eq!(
            read(Layout::Access, "00/Jan/1970:01:00:00"),
            Reading::Invalid
        );
        assert_eq!(
            read(Layout::Access, "01/Jan/1970:01:00:00 +01:00"),
            Reading::Unfit
        );
        let feb29 = Utc
            .with_ymd_and_hms(2000, 2, 29, 1, 2, 3)
            .unwrap()
            .timestamp()
            * NS;
        assert_eq!(
            read(Layout::Syslog, "Feb 29 01:02:03"),
            Reading::Naive(feb29)
        );
        assert_eq!(
            read(Layout::Syslog, "Feb 29 01:02:03.5"),
            Reading::Naive(feb29 + NS / 2)
        );
        let mar1 = Utc
            .with_ymd_and_hms(2000, 3, 1, 0, 0, 0)
            .unwrap()
            .timestamp()
            * NS;
        assert_eq!(
            read(Layout::Syslog, "Mar  1 00:00:00"),
            Reading::Naive(mar1)
        );
        assert_eq!(
            read(Layout::Syslog, "Mar 01 00:00:00"),
            Reading::Naive(mar1)
        );
        assert_eq!(read(Layout::Syslog, "Mar 1 00:00:00"), Reading::Unfit);
        assert_eq!(read(Layout::Syslog, "Mar  1 00:00:00."), Reading::Unfit);
        assert_eq!(read(Layout::Syslog, "Feb 30 00:00:00"), Reading::Invalid);
    }

    #[test]
    fn ctime_and_compact_shapes() {
        let t = Utc
            .with_ymd_and_hms(2005, 12, 4, 4, 51, 8)
            .unwrap()
            .timestamp()
            * NS;
        assert_eq!(
            read(Layout::Ctime, "Sun Dec 04 04:51:08 2005"),
            Reading::Naive(t)
        );
        assert_eq!(
            read(Layout::Ctime, "Dec 04 04:51:08 2005"),
            Reading::Naive(t)
        );
        assert_eq!(
            read(Layout::Ctime, "Xyz Dec 04 04:51:08.25 2005"),
            Reading::Naive(t + NS / 4)
        );
        assert_eq!(
            read(Layout::Ctime, "Sun Dec  4 04:51:08 2005"),
            Reading::Unfit
        );
        assert_eq!(
            read(Layout::Ctime, "Sun Foo 04 04:51:08 2005"),
            Reading::Unfit
        );
        assert_eq!(
            read(Layout::Ctime, "Sun Dec 04 04:51:60 2005"),
            Reading::Unfit
        );
        assert_eq!(
            read(Layout::Ctime, "Sun Dec 04 04:51:08 2300"),
            Reading::Unfit
        );
        assert_eq!(
            read(Layout::Ctime, "Sun Feb 30 04:51:08 2005"),
            Reading::Invalid
        );
        let h = Utc
            .with_ymd_and_hms(2008, 11, 9, 20, 35, 18)
            .unwrap()
            .timestamp()
            * NS;
        assert_eq!(read(Layout::Compact, "081109 203518"), Reading::Naive(h));
        let old = Utc
            .with_ymd_and_hms(1969, 1, 1, 0, 0, 0)
            .unwrap()
            .timestamp()
            * NS;
        assert_eq!(read(Layout::Compact, "690101 000000"), Reading::Naive(old));
        assert_eq!(read(Layout::Compact, "081109 353518"), Reading::Unfit);
        assert_eq!(read(Layout::Compact, "081309 203518"), Reading::Invalid);
        assert_eq!(read(Layout::Compact, "081109 20351"), Reading::Unfit);
    }

    fn any_layout() -> impl Strategy<Value = Layout> {
        prop_oneof![
            Just(Layout::Iso),
            Just(Layout::Access),
            Just(Layout::Syslog),
            Just(Layout::Ctime),
            Just(Layout::Compact),
        ]
    }

    proptest! {
        #[test]
        fn no_panic_on_any_text(layout in any_layout(), text in "\\PC{0,40}") {
            let _ = read(layout, &text);
        }

        #[test]
        fn no_panic_on_near_misses(layout in any_layout(), text in "[0-9A-Za-z /:.,+TZ-]{0,32}") {
            let _ = read(layout, &text);
        }

        #[test]
        fn render_then_read_round_trips(seconds in -8_000_000_000i64..9_000_000_000i64, nanos in 0u32..1_000_000_000u32) {
            let Some(time) = chrono::DateTime::from_timestamp(seconds, nanos) else { return Ok(()); };
            let naive = time.naive_utc();
            let expected = time.timestamp_nanos_opt().unwrap_or_default();
            let iso = naive.format("%Y-%m-%dT%H:%M:%S%.9f").to_string();
            let whole = expected - i64::from(nanos);
            if (1700..=2259).contains(&naive.year()) {
                prop_assert_eq!(read(Layout::Iso, &iso), Reading::Naive(expected));
                let zoned = format!("{}+02:30", naive.format("%Y-%m-%d %H:%M:%S%.9f"));
                prop_assert_eq!(read(Layout::Iso, &zoned), Reading::Utc(expected - 9_000 * NS));
                let access = naive.format("%d/%b/%Y:%H:%M:%S -0100").to_string();
                prop_assert_eq!(read(Layout::Access, &access), Reading::Utc(whole + 3_600 * NS));
            }
            if let Some(in_2000) = naive.with_year(PLACEHOLDER_YEAR) {
                let syslog = in_2000.format("%b %e %H:%M:%S").to_string();
                let want = in_2000.and_utc().timestamp() * NS;
                prop_assert_eq!(read(Layout::Syslog, &syslog), Reading::Naive(want));
                prop_assert_eq!(in_2000.nanosecond(), nanos);
            }
        }
    }
}
