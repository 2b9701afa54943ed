//! A catalogue of timestamp layouts for the generic reader, each with a byte matcher and a renderer.
//!
//! A layout is written in a small strftime-like language (see [`Tok`]), compiled once into tokens. The
//! matcher walks the tokens over the bytes of a line at one position (no regex, no allocation) and
//! returns the time it read; the renderer writes a time in the layout (for the round-trip tests and
//! the Python tests that rewrite real logs into every layout).
//!
//! Conventions shared with `pmtimeline.connectors.timeformats`: a time with an explicit zone (`Z`,
//! `±hh:mm`, `±hhmm`, `UTC`, `GMT`) or an epoch number is placed in UTC; a time without one is a naive
//! wall time whose zone the caller decides; a time without a year gets the placeholder year 2000 (a
//! leap year, so `Feb 29` reads) and `year_missing`. A zone abbreviation that means different offsets
//! in different places (CST, IST, BST...) is recognised but never guessed: the time stays unplaced.
//! A well-formed time that nanoseconds since 1970 cannot hold (before 1677-09-21, after 2262-04-11) is
//! out of range.

use std::sync::OnceLock;

use chrono::{Datelike, NaiveDate, NaiveDateTime, Timelike};

/// Year given to year-less times until the caller infers the real one (timeformats.PLACEHOLDER_YEAR).
pub const PLACEHOLDER_YEAR: i32 = 2000;

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];
const MONTHS_FULL: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const WEEKDAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
const WEEKDAYS_FULL: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

/// Zone abbreviations that mean different offsets in different places: recognised, never guessed
/// (the same list as log_formats._AMBIGUOUS_ZONES).
const AMBIGUOUS_ZONES: [&str; 34] = [
    "IST", "CST", "CDT", "BST", "EST", "EDT", "PST", "PDT", "MST", "MDT", "CET", "CEST", "EET",
    "EEST", "AST", "ADT", "MSK", "JST", "KST", "HKT", "SGT", "AEST", "AEDT", "ACST", "AWST",
    "NZST", "NZDT", "WET", "WEST", "SAST", "PHT", "WIB", "ART", "BRT",
];

/// Epoch numbers count as times only between these instants (2000-01-01 and 2100-01-01, in s): a bare
/// number outside is more likely an id or a counter than a time.
const EPOCH_MIN_S: i64 = 946_684_800;
const EPOCH_MAX_S: i64 = 4_102_444_800;

/// One element of a layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tok {
    /// A literal byte (in the spec: any byte but `%`).
    Lit(u8),
    /// `%Y`: four-digit year.
    Year4,
    /// `%y`: two-digit year (69-99 -> 19xx, 00-68 -> 20xx, as POSIX strptime).
    Year2,
    /// `%m`: two-digit month.
    Month2,
    /// `%-m`: one- or two-digit month.
    Month12,
    /// `%b`: month abbreviation (Jan).
    MonAbbr,
    /// `%B`: full month name (January).
    MonFull,
    /// `%d`: two-digit day.
    Day2,
    /// `%e`: day of one or two digits, maybe after one padding space (` 7`, `7`, `07`).
    DaySp,
    /// `%-d`: day of one or two digits.
    Day12,
    /// `%a`: weekday abbreviation (read, not checked against the date: as today's reader).
    WdAbbr,
    /// `%A`: full weekday name.
    WdFull,
    /// `%H`: two-digit hour 00-23.
    Hour2,
    /// `%-H`: hour of one or two digits.
    Hour12,
    /// `%I`: 12-hour clock hour of one or two digits (needs `%p`).
    HourAmPm,
    /// `%M`: two-digit minute.
    Min2,
    /// `%S`: two-digit second (60 is refused, as pandas does).
    Sec2,
    /// `%f`: optional fraction of a second: `.` or `,` and 1-9 digits.
    FracOpt,
    /// `%F`: required fraction: `.` and 1-9 digits.
    FracDot,
    /// `%L`: `:` and 1-3 digits counting milliseconds (Loghub HealthApp writes `22:15:35:11`).
    MsColon,
    /// `%p`: AM or PM (any case).
    AmPm,
    /// `%z`: optional zone: `Z`, `±hh:mm`, `±hhmm`, `UTC`/`GMT` (maybe with an offset), after at most
    /// one space; an ambiguous abbreviation after a space makes the time unplaced.
    Zone,
    /// `%s`, `%Q`, `%U`, `%N`: epoch seconds (10 digits, maybe a fraction), ms (13), µs (16), ns (19).
    Epoch(EpochUnit),
}

/// The unit of an epoch layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EpochUnit {
    S,
    Ms,
    Us,
    Ns,
}

impl EpochUnit {
    fn digits(self) -> usize {
        match self {
            EpochUnit::S => 10,
            EpochUnit::Ms => 13,
            EpochUnit::Us => 16,
            EpochUnit::Ns => 19,
        }
    }

    fn nanos(self) -> i64 {
        match self {
            EpochUnit::S => 1_000_000_000,
            EpochUnit::Ms => 1_000_000,
            EpochUnit::Us => 1_000,
            EpochUnit::Ns => 1,
        }
    }
}

/// A layout of the catalogue.
#[derive(Debug)]
pub struct Layout {
    /// Stable name (shown by `sniff`, used to bind a file to its layout).
    pub name: &'static str,
    /// The layout in the spec language of [`Tok`].
    pub spec: &'static str,
    /// Where the layout is seen (a public log sample, an RFC, a strftime default).
    pub source: &'static str,
    /// Tried line by line on lines the learned layout does not read. Layouts whose reading depends on
    /// the file (day-first against month-first, bare digit runs) are only used when learned.
    pub fallback: bool,
    pub tokens: Vec<Tok>,
    pub has_year: bool,
    pub two_digit_year: bool,
    pub has_zone: bool,
    pub epoch: Option<EpochUnit>,
    /// Digits of the second's fraction the layout can carry (0, 3 or 9).
    pub fraction_digits: u32,
    /// The layout carries seconds (else minutes are its precision).
    pub has_seconds: bool,
    /// Bracketed layouts: the brackets are not part of `ts_raw`.
    pub bracketed: bool,
}

/// (name, spec, source, fallback)
const CATALOGUE: &[(&str, &str, &str, bool)] = &[
    // ISO 8601 / RFC 3339 (and Python logging, log4j, Go, Zookeeper, Hadoop, Loghub Windows CBS).
    (
        "iso8601",
        "%Y-%m-%dT%H:%M:%S%f%z",
        "RFC 3339 / ISO 8601 extended",
        true,
    ),
    (
        "iso8601_space",
        "%Y-%m-%d %H:%M:%S%f%z",
        "ISO 8601 with a space (Python logging, log4j ISO8601, Loghub Hadoop/Zookeeper/Windows)",
        true,
    ),
    (
        "iso8601_minutes",
        "%Y-%m-%dT%H:%M%z",
        "ISO 8601 extended, minutes precision",
        true,
    ),
    (
        "iso8601_space_minutes",
        "%Y-%m-%d %H:%M%z",
        "ISO 8601 with a space, minutes precision",
        true,
    ),
    (
        "iso8601_basic",
        "%Y%m%dT%H%M%S%f%z",
        "ISO 8601 basic format",
        true,
    ),
    (
        "iso8601_12h",
        "%Y-%m-%d %I:%M:%S %p%z",
        "ISO date with a 12-hour clock (strftime %Y-%m-%d %I:%M:%S %p)",
        true,
    ),
    (
        "iso8601_bracketed",
        "[%Y-%m-%dT%H:%M:%S%f%z]",
        "bracketed RFC 3339 (Caddy, many Go/Rust loggers)",
        true,
    ),
    (
        "iso8601_space_bracketed",
        "[%Y-%m-%d %H:%M:%S%f%z]",
        "bracketed ISO 8601 with a space (Ruby Logger, Laravel, PHP-FPM)",
        true,
    ),
    (
        "bgl",
        "%Y-%m-%d-%H.%M.%S%F",
        "Loghub BGL (IBM Blue Gene/L RAS log)",
        true,
    ),
    // Year/month/day with slashes (Go log package, nginx error log).
    (
        "ymd_slash",
        "%Y/%m/%d %H:%M:%S%f%z",
        "Go log.LstdFlags, nginx error.log",
        true,
    ),
    (
        "ymd_slash_t",
        "%Y/%m/%dT%H:%M:%S%f",
        "year/month/day with a T",
        true,
    ),
    (
        "ymd_slash_dash",
        "%Y/%m/%d-%H:%M:%S%f",
        "year/month/day-time (glog-style tools)",
        true,
    ),
    (
        "ymd_slash_bracketed",
        "[%Y/%m/%d %H:%M:%S%f]",
        "bracketed year/month/day",
        true,
    ),
    (
        "ymd_dot",
        "%Y.%m.%d %H:%M:%S%f",
        "year.month.day (Loghub Thunderbird dates, Hungarian/Chinese locales)",
        true,
    ),
    (
        "ymd_dot_bracketed",
        "[%Y.%m.%d %H:%M:%S%f]",
        "bracketed year.month.day",
        true,
    ),
    // Day-first and month-first numeric dates: ambiguous line by line, learned from the file only.
    (
        "dmy_dot",
        "%d.%m.%Y %H:%M:%S%f",
        "day.month.year (German/Russian locales, strftime %d.%m.%Y)",
        false,
    ),
    (
        "dmy_dot_bracketed",
        "[%d.%m.%Y %H:%M:%S%f]",
        "bracketed day.month.year",
        false,
    ),
    (
        "mdy_slash",
        "%m/%d/%Y %H:%M:%S%f",
        "month/day/year (en-US locale, strftime %m/%d/%Y)",
        false,
    ),
    (
        "dmy_slash",
        "%d/%m/%Y %H:%M:%S%f",
        "day/month/year (en-GB/fr locales, strftime %d/%m/%Y)",
        false,
    ),
    (
        "mdy_slash_12h",
        "%-m/%-d/%Y %I:%M:%S %p",
        ".NET / Windows en-US general date (3/15/2024 1:05:07 PM)",
        false,
    ),
    (
        "dmy_dash",
        "%d-%m-%Y %H:%M:%S%f",
        "day-month-year (strftime %d-%m-%Y)",
        false,
    ),
    (
        "ymd_slash_short",
        "%y/%m/%d %H:%M:%S",
        "two-digit year/month/day (Loghub Spark, log4j yy/MM/dd)",
        true,
    ),
    (
        "mdy_slash_short",
        "%m/%d/%y %H:%M:%S",
        "month/day/two-digit year (strftime %x %X in the C locale)",
        false,
    ),
    // Compact digit runs.
    (
        "yymmdd_hhmmss",
        "%y%m%d %H%M%S",
        "Loghub HDFS (yyMMdd HHmmss)",
        false,
    ),
    (
        "yymmdd_colon",
        "%y%m%d %-H:%M:%S",
        "MySQL 5.x error log (yymmdd H:MM:SS)",
        false,
    ),
    (
        "compact_dash",
        "%Y%m%d-%H:%M:%S%f",
        "yyyyMMdd-HH:mm:ss (glog date prefix variants)",
        true,
    ),
    (
        "healthapp",
        "%Y%m%d-%H:%M:%S%L",
        "Loghub HealthApp (yyyyMMdd-HH:mm:ss:SSS, unpadded ms)",
        true,
    ),
    (
        "compact",
        "%Y%m%d%H%M%S",
        "yyyyMMddHHmmss (strftime %Y%m%d%H%M%S, SQL dumps)",
        false,
    ),
    // Month names.
    (
        "access",
        "%-d/%b/%Y:%H:%M:%S%z",
        "NCSA common/combined log format time (Apache, nginx)",
        true,
    ),
    (
        "access_bracketed",
        "[%-d/%b/%Y:%H:%M:%S%z]",
        "bracketed NCSA access-log time",
        true,
    ),
    (
        "ctime",
        "%a %b %e %H:%M:%S%f %Y%z",
        "C asctime()/ctime(), Apache error log",
        true,
    ),
    (
        "ctime_bracketed",
        "[%a %b %e %H:%M:%S%f %Y]",
        "Apache 2.x error log (Loghub Apache)",
        true,
    ),
    (
        "ctime_no_weekday",
        "%b %e %H:%M:%S%f %Y%z",
        "asctime without the weekday (Cisco, some syslog relays)",
        true,
    ),
    (
        "date_cmd",
        "%a %b %e %H:%M:%S%z %Y",
        "date(1) default output in the C locale",
        true,
    ),
    (
        "date_cmd_12h",
        "%a %d %b %Y %I:%M:%S %p%z",
        "date(1) output in the en_US locale",
        true,
    ),
    (
        "js_date",
        "%a %b %d %Y %H:%M:%S%z",
        "JavaScript Date.prototype.toString",
        true,
    ),
    (
        "syslog",
        "%b %e %H:%M:%S%f",
        "RFC 3164 BSD syslog (year-less, so no zone is read; Loghub Linux, Mac, OpenSSH)",
        true,
    ),
    (
        "syslog_bracketed",
        "[%b %e %H:%M:%S%f]",
        "bracketed BSD syslog time",
        true,
    ),
    (
        "syslog_year",
        "%b %e %Y %H:%M:%S%f%z",
        "BSD syslog with a year (Cisco IOS 'service timestamps ... year')",
        true,
    ),
    (
        "rfc2822",
        "%a, %d %b %Y %H:%M:%S%z",
        "RFC 2822 / RFC 7231 IMF-fixdate (HTTP Date, mail)",
        true,
    ),
    (
        "rfc2822_no_weekday",
        "%d %b %Y %H:%M:%S%f%z",
        "RFC 2822 without the weekday, log4j DATE (dd MMM yyyy HH:mm:ss,SSS)",
        true,
    ),
    (
        "rfc850",
        "%A, %d-%b-%y %H:%M:%S%z",
        "RFC 850 date (obsolete HTTP date)",
        true,
    ),
    (
        "dmy_month_name",
        "%d-%b-%Y %H:%M:%S%f",
        "dd-MMM-yyyy (Tomcat catalina.out, Oracle, BIND)",
        true,
    ),
    (
        "month_full",
        "%B %d, %Y %H:%M:%S",
        "full month name (strftime %B %d, %Y %H:%M:%S)",
        true,
    ),
    (
        "month_full_12h",
        "%B %e, %Y %I:%M:%S %p",
        "full month name, 12-hour clock (Java DateFormat.LONG en_US)",
        true,
    ),
    (
        "java_util_logging",
        "%b %d, %Y %I:%M:%S %p",
        "java.util.logging.SimpleFormatter default",
        true,
    ),
    // Year-less numeric dates.
    (
        "android",
        "%m-%d %H:%M:%S%f",
        "Android logcat threadtime (Loghub Android)",
        true,
    ),
    (
        "proxifier",
        "[%m.%d %H:%M:%S]",
        "Loghub Proxifier ([MM.dd HH:mm:ss])",
        true,
    ),
    // Epoch numbers: only plausible instants (2000-2100).
    (
        "epoch_s",
        "%s",
        "Unix time in seconds, maybe with a fraction (Loghub BGL/HPC/Thunderbird, auditd)",
        true,
    ),
    (
        "epoch_ms",
        "%Q",
        "Unix time in milliseconds (Java System.currentTimeMillis, JavaScript Date.now)",
        true,
    ),
    ("epoch_us", "%U", "Unix time in microseconds", false),
    (
        "epoch_ns",
        "%N",
        "Unix time in nanoseconds (Go UnixNano, OpenTelemetry)",
        false,
    ),
    ("epoch_s_bracketed", "[%s]", "bracketed Unix time", true),
];

fn compile(spec: &str) -> Vec<Tok> {
    let bytes = spec.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b != b'%' || i + 1 >= bytes.len() {
            out.push(Tok::Lit(b));
            i += 1;
            continue;
        }
        let (dash, code) = if bytes[i + 1] == b'-' && i + 2 < bytes.len() {
            (true, bytes[i + 2])
        } else {
            (false, bytes[i + 1])
        };
        let tok = match (dash, code) {
            (_, b'Y') => Tok::Year4,
            (_, b'y') => Tok::Year2,
            (false, b'm') => Tok::Month2,
            (true, b'm') => Tok::Month12,
            (_, b'b') => Tok::MonAbbr,
            (_, b'B') => Tok::MonFull,
            (false, b'd') => Tok::Day2,
            (true, b'd') => Tok::Day12,
            (_, b'e') => Tok::DaySp,
            (_, b'a') => Tok::WdAbbr,
            (_, b'A') => Tok::WdFull,
            (false, b'H') => Tok::Hour2,
            (true, b'H') => Tok::Hour12,
            (_, b'I') => Tok::HourAmPm,
            (_, b'M') => Tok::Min2,
            (_, b'S') => Tok::Sec2,
            (_, b'f') => Tok::FracOpt,
            (_, b'F') => Tok::FracDot,
            (_, b'L') => Tok::MsColon,
            (_, b'p') => Tok::AmPm,
            (_, b'z') => Tok::Zone,
            (_, b's') => Tok::Epoch(EpochUnit::S),
            (_, b'Q') => Tok::Epoch(EpochUnit::Ms),
            (_, b'U') => Tok::Epoch(EpochUnit::Us),
            (_, b'N') => Tok::Epoch(EpochUnit::Ns),
            _ => Tok::Lit(b'%'),
        };
        i += if dash { 3 } else { 2 };
        out.push(tok);
    }
    out
}

fn build(name: &'static str, spec: &'static str, source: &'static str, fallback: bool) -> Layout {
    let tokens = compile(spec);
    let epoch = tokens.iter().find_map(|t| match t {
        Tok::Epoch(unit) => Some(*unit),
        _ => None,
    });
    let fraction_digits = if tokens.contains(&Tok::MsColon) {
        3
    } else if tokens.contains(&Tok::FracOpt)
        || tokens.contains(&Tok::FracDot)
        || epoch == Some(EpochUnit::S)
    {
        9
    } else {
        match epoch {
            Some(EpochUnit::Ms) => 3,
            Some(EpochUnit::Us) => 6,
            Some(EpochUnit::Ns) => 9,
            _ => 0,
        }
    };
    Layout {
        name,
        spec,
        source,
        fallback,
        has_year: epoch.is_some() || tokens.iter().any(|t| matches!(t, Tok::Year4 | Tok::Year2)),
        two_digit_year: tokens.contains(&Tok::Year2),
        has_zone: tokens.contains(&Tok::Zone),
        epoch,
        fraction_digits,
        has_seconds: epoch.is_some() || tokens.contains(&Tok::Sec2),
        bracketed: spec.starts_with('['),
        tokens,
    }
}

/// The catalogue, in its order of preference on ties.
pub fn catalogue() -> &'static [Layout] {
    static LAYOUTS: OnceLock<Vec<Layout>> = OnceLock::new();
    LAYOUTS.get_or_init(|| {
        CATALOGUE
            .iter()
            .map(|&(name, spec, source, fallback)| build(name, spec, source, fallback))
            .collect()
    })
}

/// The index of the layout named `name`.
pub fn by_name(name: &str) -> Option<usize> {
    catalogue().iter().position(|layout| layout.name == name)
}

/// What a layout read at one position.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// An instant (explicit zone or epoch), ns since 1970 UTC.
    Utc(i64),
    /// A wall time without a zone, ns since 1970 as if UTC; `year_missing` when the text had no year.
    Naive { ns: i64, year_missing: bool },
    /// Well-formed, but outside the nanosecond range.
    OutOfRange,
    /// Followed by an ambiguous zone abbreviation: not placed.
    AmbiguousZone,
}

/// A time found in a line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Found {
    pub layout: usize,
    /// Byte span of the time text (`ts_raw`; without the brackets of a bracketed layout).
    pub start: usize,
    pub end: usize,
    /// Where the rest of the line begins (after the time, its brackets and any ambiguous zone).
    pub rest: usize,
    pub outcome: Outcome,
}

#[derive(Default)]
struct Fields {
    year: Option<i32>,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
    nanos: u32,
    pm: Option<bool>,
    offset_s: Option<i32>,
    ambiguous: bool,
    epoch_ns: Option<i64>,
}

fn digits(b: &[u8], at: usize, min: usize, max: usize) -> Option<(u32, usize)> {
    let mut value: u32 = 0;
    let mut n = 0;
    while n < max && at + n < b.len() && b[at + n].is_ascii_digit() {
        value = value * 10 + u32::from(b[at + n] - b'0');
        n += 1;
    }
    (n >= min).then_some((value, at + n))
}

fn word(b: &[u8], at: usize, words: &[&str]) -> Option<(u32, usize)> {
    for (i, w) in words.iter().enumerate() {
        let w = w.as_bytes();
        if b.len() >= at + w.len() && &b[at..at + w.len()] == w {
            let idx = u32::try_from(i).ok()?;
            return Some((idx, at + w.len()));
        }
    }
    None
}

fn fraction(b: &[u8], at: usize) -> Option<(u32, usize)> {
    let start = at;
    let mut nanos: u32 = 0;
    let mut n = 0;
    while start + n < b.len() && b[start + n].is_ascii_digit() {
        if n < 9 {
            nanos = nanos * 10 + u32::from(b[start + n] - b'0');
        }
        n += 1;
    }
    if n == 0 || n > 9 {
        return None;
    }
    for _ in n..9 {
        nanos *= 10;
    }
    Some((nanos, start + n))
}

fn is_alpha(b: &[u8], at: usize) -> bool {
    at < b.len() && b[at].is_ascii_alphabetic()
}

/// `±hh:mm` or `±hhmm` at `at`: (offset seconds, end).
fn numeric_offset(b: &[u8], at: usize) -> Option<(i32, usize)> {
    let sign = match b.get(at)? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let (hh, mut i) = digits(b, at + 1, 2, 2)?;
    if b.get(i) == Some(&b':') {
        i += 1;
    }
    let (mm, end) = digits(b, i, 2, 2)?;
    if hh > 23 || mm > 59 || b.get(end).is_some_and(u8::is_ascii_digit) {
        return None;
    }
    let seconds = i32::try_from(hh * 3600 + mm * 60).ok()?;
    Some((sign * seconds, end))
}

/// The optional zone: (offset seconds or None, ambiguous, end). Absent -> (None, false, at).
fn zone(b: &[u8], at: usize) -> (Option<i32>, bool, usize) {
    for skip in [0usize, 1] {
        let i = at + skip;
        if skip == 1 && b.get(at) != Some(&b' ') {
            break;
        }
        if b.get(i) == Some(&b'Z')
            && !is_alpha(b, i + 1)
            && !b.get(i + 1).is_some_and(u8::is_ascii_digit)
        {
            return (Some(0), false, i + 1);
        }
        for name in ["UTC", "GMT"] {
            let n = name.as_bytes();
            if b.len() >= i + 3 && &b[i..i + 3] == n && !is_alpha(b, i + 3) {
                if let Some((offset, end)) = numeric_offset(b, i + 3) {
                    return (Some(offset), false, end);
                }
                if !b.get(i + 3).is_some_and(u8::is_ascii_digit) {
                    return (Some(0), false, i + 3);
                }
            }
        }
        if let Some((offset, end)) = numeric_offset(b, i) {
            return (Some(offset), false, end);
        }
        if skip == 1 {
            for name in AMBIGUOUS_ZONES {
                let n = name.as_bytes();
                if b.len() >= i + n.len() && &b[i..i + n.len()] == n && !is_alpha(b, i + n.len()) {
                    return (None, true, i + n.len());
                }
            }
        }
    }
    (None, false, at)
}

fn epoch_at(b: &[u8], at: usize, unit: EpochUnit) -> Option<(i64, usize)> {
    let n = unit.digits();
    if b.len() < at + n || !b[at..at + n].iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut whole: i64 = 0;
    for &d in &b[at..at + n] {
        whole = whole.checked_mul(10)?.checked_add(i64::from(d - b'0'))?;
    }
    let mut end = at + n;
    if b.get(end).is_some_and(u8::is_ascii_digit) {
        return None;
    }
    let mut frac_ns: i64 = 0;
    if unit == EpochUnit::S && b.get(end) == Some(&b'.') {
        if let Some((nanos, e)) = fraction(b, end + 1) {
            frac_ns = i64::from(nanos);
            end = e;
        }
    }
    let seconds = whole / (1_000_000_000 / unit.nanos());
    if !(EPOCH_MIN_S..EPOCH_MAX_S).contains(&seconds) {
        return None;
    }
    Some((whole.checked_mul(unit.nanos())?.checked_add(frac_ns)?, end))
}

fn read_tokens(tokens: &[Tok], b: &[u8], at: usize) -> Option<(Fields, usize)> {
    let mut f = Fields::default();
    let mut i = at;
    for tok in tokens {
        match *tok {
            Tok::Lit(c) => {
                if b.get(i) != Some(&c) {
                    return None;
                }
                i += 1;
            }
            Tok::Year4 => {
                let (v, e) = digits(b, i, 4, 4)?;
                f.year = Some(i32::try_from(v).ok()?);
                i = e;
            }
            Tok::Year2 => {
                let (v, e) = digits(b, i, 2, 2)?;
                let v = i32::try_from(v).ok()?;
                f.year = Some(if v >= 69 { 1900 + v } else { 2000 + v });
                i = e;
            }
            Tok::Month2 | Tok::Day2 | Tok::Hour2 | Tok::Min2 | Tok::Sec2 => {
                let (v, e) = digits(b, i, 2, 2)?;
                match tok {
                    Tok::Month2 => f.month = v,
                    Tok::Day2 => f.day = v,
                    Tok::Hour2 => f.hour = v,
                    Tok::Min2 => f.minute = v,
                    _ => f.second = v,
                }
                i = e;
            }
            Tok::Month12 | Tok::Day12 | Tok::Hour12 | Tok::HourAmPm => {
                let (v, e) = digits(b, i, 1, 2)?;
                match tok {
                    Tok::Month12 => f.month = v,
                    Tok::Day12 => f.day = v,
                    _ => f.hour = v,
                }
                i = e;
            }
            Tok::DaySp => {
                let (v, e) = if b.get(i) == Some(&b' ') {
                    digits(b, i + 1, 1, 1)?
                } else {
                    digits(b, i, 1, 2)?
                };
                f.day = v;
                i = e;
            }
            Tok::MonAbbr => {
                let (v, e) = word(b, i, &MONTHS)?;
                f.month = v + 1;
                i = e;
            }
            Tok::MonFull => {
                let (v, e) = word(b, i, &MONTHS_FULL)?;
                f.month = v + 1;
                i = e;
            }
            Tok::WdAbbr => i = word(b, i, &WEEKDAYS)?.1,
            Tok::WdFull => i = word(b, i, &WEEKDAYS_FULL)?.1,
            Tok::FracOpt => {
                if matches!(b.get(i), Some(b'.' | b',')) {
                    if let Some((nanos, e)) = fraction(b, i + 1) {
                        f.nanos = nanos;
                        i = e;
                    }
                }
            }
            Tok::FracDot => {
                if b.get(i) != Some(&b'.') {
                    return None;
                }
                let (nanos, e) = fraction(b, i + 1)?;
                f.nanos = nanos;
                i = e;
            }
            Tok::MsColon => {
                if b.get(i) != Some(&b':') {
                    return None;
                }
                let (ms, e) = digits(b, i + 1, 1, 3)?;
                f.nanos = ms * 1_000_000;
                i = e;
            }
            Tok::AmPm => {
                let pair = b.get(i..i + 2)?;
                f.pm = match [pair[0].to_ascii_uppercase(), pair[1].to_ascii_uppercase()] {
                    [b'A', b'M'] => Some(false),
                    [b'P', b'M'] => Some(true),
                    _ => return None,
                };
                i += 2;
            }
            Tok::Zone => {
                let (offset, ambiguous, e) = zone(b, i);
                f.offset_s = offset;
                f.ambiguous = ambiguous;
                i = e;
            }
            Tok::Epoch(unit) => {
                let (ns, e) = epoch_at(b, i, unit)?;
                f.epoch_ns = Some(ns);
                i = e;
            }
        }
    }
    Some((f, i))
}

fn first_kind(layout: &Layout) -> Option<Tok> {
    let skip = usize::from(layout.bracketed);
    layout.tokens.get(skip).copied()
}

fn starts_with_digit(layout: &Layout) -> bool {
    !matches!(
        first_kind(layout),
        Some(Tok::MonAbbr | Tok::MonFull | Tok::WdAbbr | Tok::WdFull | Tok::Lit(_))
    )
}

/// Can `layout` begin at byte `at` of `b` (a cheap test on the first byte and the byte before)?
pub fn may_start(layout: &Layout, b: &[u8], at: usize) -> bool {
    let Some(&first) = b.get(at) else {
        return false;
    };
    if layout.bracketed {
        return first == b'[';
    }
    if starts_with_digit(layout) {
        first.is_ascii_digit() && !(at > 0 && b[at - 1].is_ascii_digit())
    } else {
        first.is_ascii_uppercase() && !(at > 0 && b[at - 1].is_ascii_alphabetic())
    }
}

/// Read `layout` at byte `at` of `line`.
pub fn read_at(index: usize, line: &[u8], at: usize) -> Option<Found> {
    let layout = catalogue().get(index)?;
    if !may_start(layout, line, at) {
        return None;
    }
    let (f, end) = read_tokens(&layout.tokens, line, at)?;
    // The time must not run on into more digits (or, after a word, more letters).
    let last = end
        .checked_sub(1)
        .and_then(|i| line.get(i))
        .copied()
        .unwrap_or(b' ');
    if let Some(&next) = line.get(end) {
        if (last.is_ascii_digit() && next.is_ascii_digit())
            || (last.is_ascii_alphabetic() && next.is_ascii_alphabetic())
        {
            return None;
        }
    }
    let outcome = resolve(&f)?;
    let (start, ts_end) = if layout.bracketed {
        (at + 1, end - 1)
    } else {
        (at, end)
    };
    let ts_end = if f.ambiguous {
        // The ambiguous abbreviation is not part of the time text (as today's reader).
        let mut e = ts_end;
        while e > start && line[e - 1].is_ascii_alphabetic() {
            e -= 1;
        }
        while e > start && line[e - 1] == b' ' {
            e -= 1;
        }
        e
    } else {
        ts_end
    };
    Some(Found {
        layout: index,
        start,
        end: ts_end,
        rest: end,
        outcome,
    })
}

/// The date and time the fields say, or None when they are no calendar time (Feb 30, 25:00).
fn resolve(f: &Fields) -> Option<Outcome> {
    if let Some(ns) = f.epoch_ns {
        return Some(Outcome::Utc(ns));
    }
    let mut hour = f.hour;
    if let Some(pm) = f.pm {
        if !(1..=12).contains(&hour) {
            return None;
        }
        hour = match (pm, hour) {
            (false, 12) => 0,
            (true, 12) => 12,
            (true, h) => h + 12,
            (false, h) => h,
        };
    }
    if hour > 23 || f.minute > 59 || f.second > 59 {
        return None;
    }
    let year_missing = f.year.is_none();
    let year = f.year.unwrap_or(PLACEHOLDER_YEAR);
    let date = NaiveDate::from_ymd_opt(year, f.month, f.day)?;
    let wall = date.and_hms_nano_opt(hour, f.minute, f.second, f.nanos)?;
    if f.ambiguous {
        return Some(Outcome::AmbiguousZone);
    }
    let Some(ns) = wall.and_utc().timestamp_nanos_opt() else {
        return Some(Outcome::OutOfRange);
    };
    match f.offset_s {
        Some(offset) => match ns.checked_sub(i64::from(offset) * 1_000_000_000) {
            Some(utc) => Some(Outcome::Utc(utc)),
            None => Some(Outcome::OutOfRange),
        },
        None => Some(Outcome::Naive { ns, year_missing }),
    }
}

/// Write the time `ns` (UTC instant, or wall time as if UTC) in layout `index`. `offset_minutes` is the
/// zone to write for layouts with one (the wall time is then `ns` + offset); None writes no zone.
/// None when the layout cannot write the time (a year outside its range, an epoch out of range).
pub fn render(index: usize, ns: i64, offset_minutes: Option<i32>) -> Option<String> {
    let layout = catalogue().get(index)?;
    if let Some(unit) = layout.epoch {
        let seconds = ns.div_euclid(1_000_000_000);
        if !(EPOCH_MIN_S..EPOCH_MAX_S).contains(&seconds) {
            return None;
        }
        let whole = ns.div_euclid(unit.nanos());
        let mut text = format!("{whole}");
        if text.len() != unit.digits() {
            return None;
        }
        let frac = ns.rem_euclid(1_000_000_000);
        if unit == EpochUnit::S && frac != 0 {
            text.push_str(&format!(".{frac:09}"));
        }
        return Some(if layout.bracketed {
            format!("[{text}]")
        } else {
            text
        });
    }
    let offset_ns =
        i64::from(offset_minutes.filter(|_| layout.has_zone).unwrap_or(0)) * 60_000_000_000;
    let wall_ns = ns.checked_add(offset_ns)?;
    let wall: NaiveDateTime = chrono::DateTime::from_timestamp_nanos(wall_ns).naive_utc();
    if layout.two_digit_year && !(1969..=2068).contains(&wall.year()) {
        return None;
    }
    if layout.has_year && !(0..=9999).contains(&wall.year()) {
        return None;
    }
    let mut out = String::new();
    for tok in &layout.tokens {
        match *tok {
            Tok::Lit(c) => out.push(char::from(c)),
            Tok::Year4 => out.push_str(&format!("{:04}", wall.year())),
            Tok::Year2 => out.push_str(&format!("{:02}", wall.year().rem_euclid(100))),
            Tok::Month2 => out.push_str(&format!("{:02}", wall.month())),
            Tok::Month12 => out.push_str(&format!("{}", wall.month())),
            Tok::MonAbbr => out.push_str(MONTHS[wall.month0() as usize]),
            Tok::MonFull => out.push_str(MONTHS_FULL[wall.month0() as usize]),
            Tok::Day2 => out.push_str(&format!("{:02}", wall.day())),
            Tok::DaySp => out.push_str(&format!("{:>2}", wall.day())),
            Tok::Day12 => out.push_str(&format!("{}", wall.day())),
            Tok::WdAbbr => out.push_str(WEEKDAYS[wall.weekday().num_days_from_monday() as usize]),
            Tok::WdFull => {
                out.push_str(WEEKDAYS_FULL[wall.weekday().num_days_from_monday() as usize])
            }
            Tok::Hour2 => out.push_str(&format!("{:02}", wall.hour())),
            Tok::Hour12 => out.push_str(&format!("{}", wall.hour())),
            Tok::HourAmPm => out.push_str(&format!("{}", (wall.hour() + 11) % 12 + 1)),
            Tok::AmPm => out.push_str(if wall.hour() < 12 { "AM" } else { "PM" }),
            Tok::Min2 => out.push_str(&format!("{:02}", wall.minute())),
            Tok::Sec2 => out.push_str(&format!("{:02}", wall.second())),
            Tok::FracOpt | Tok::FracDot => {
                let nanos = wall.nanosecond();
                if nanos != 0 || *tok == Tok::FracDot {
                    out.push_str(&format!(".{nanos:09}"));
                }
            }
            Tok::MsColon => out.push_str(&format!(":{}", wall.nanosecond() / 1_000_000)),
            Tok::Zone => {
                if let Some(minutes) = offset_minutes {
                    let sign = if minutes < 0 { '-' } else { '+' };
                    let m = minutes.unsigned_abs();
                    out.push_str(&format!("{sign}{:02}:{:02}", m / 60, m % 60));
                }
            }
            Tok::Epoch(_) => {}
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(name: &str, text: &str) -> Option<Found> {
        read_at(by_name(name)?, text.as_bytes(), 0)
    }

    fn ns(text: &str) -> i64 {
        NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f")
            .map(|t| t.and_utc().timestamp_nanos_opt().unwrap_or(0))
            .unwrap_or(0)
    }

    #[test]
    fn the_catalogue_has_at_least_fifty_distinct_layouts() {
        let names: std::collections::HashSet<_> = catalogue().iter().map(|l| l.name).collect();
        assert!(catalogue().len() >= 50);
        assert_eq!(names.len(), catalogue().len());
        assert!(catalogue().iter().all(|l| !l.source.is_empty()));
    }

    #[test]
    fn iso_with_offset_is_placed_in_utc() {
        let found = read("iso8601", "2024-03-01T10:00:00.5+01:00 x");
        assert_eq!(
            found.map(|f| f.outcome),
            Some(Outcome::Utc(ns("2024-03-01 09:00:00.5")))
        );
        assert_eq!(found.map(|f| (f.start, f.end)), Some((0, 27)));
    }

    #[test]
    fn syslog_has_no_year() {
        let found = read("syslog", "Jul  1 09:00:55 host kernel");
        assert_eq!(
            found.map(|f| f.outcome),
            Some(Outcome::Naive {
                ns: ns("2000-07-01 09:00:55"),
                year_missing: true
            })
        );
    }

    #[test]
    fn ambiguous_zones_are_never_guessed() {
        let found = read("iso8601_space", "2024-03-01 10:00:00 CST x");
        assert_eq!(found.map(|f| f.outcome), Some(Outcome::AmbiguousZone));
        assert_eq!(found.map(|f| (f.end, f.rest)), Some((19, 23)));
    }

    #[test]
    fn healthapp_milliseconds_are_a_count() {
        let found = read("healthapp", "20171223-22:15:35:11|Step");
        assert_eq!(
            found.map(|f| f.outcome),
            Some(Outcome::Naive {
                ns: ns("2017-12-23 22:15:35.011"),
                year_missing: false
            })
        );
    }

    #[test]
    fn epochs_outside_2000_2100_are_not_times() {
        assert!(read("epoch_s", "0946684799 x").is_none());
        assert!(read("epoch_s", "1117838570 x").is_some());
        assert!(read("epoch_s", "11178385701 x").is_none());
    }

    #[test]
    fn out_of_range_years_are_flagged() {
        let found = read("iso8601_space", "2300-01-01 00:00:00 x");
        assert_eq!(found.map(|f| f.outcome), Some(Outcome::OutOfRange));
    }

    #[test]
    fn calendar_nonsense_does_not_match() {
        assert!(read("iso8601_space", "2024-02-30 00:00:00").is_none());
        assert!(read("iso8601_space", "2024-02-01 00:00:60").is_none());
        assert!(read("mdy_slash_12h", "3/15/2024 13:05:07 PM").is_none());
    }

    #[test]
    fn twelve_hour_clock() {
        let found = read("mdy_slash_12h", "3/15/2024 12:05:07 AM");
        assert_eq!(
            found.map(|f| f.outcome),
            Some(Outcome::Naive {
                ns: ns("2024-03-15 00:05:07"),
                year_missing: false
            })
        );
    }

    #[test]
    fn every_layout_round_trips_a_fixed_time() {
        let t = ns("2017-06-09 20:10:40.123");
        for (i, layout) in catalogue().iter().enumerate() {
            let offset = layout.has_zone.then_some(-330);
            let text = render(i, t, offset).unwrap_or_default();
            let found = read_at(i, text.as_bytes(), 0);
            assert!(
                found.is_some(),
                "{} cannot read its own {text:?}",
                layout.name
            );
        }
    }
}
