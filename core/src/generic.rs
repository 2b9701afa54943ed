//! The generic reader: learns a file's timestamp layout from its first lines, then reads every line.
//!
//! Learning scores every layout of [`crate::layouts`] on a sample of lines: the share of lines it reads
//! (at the line start, after a prefix of at most 40 characters, or at the start of one of the first
//! eight whitespace-separated fields), then the earliest mean position, then the most specific layout
//! (more tokens), then the catalogue order: deterministic. Every line is then read with the learned
//! layout; a line it does not read is tried against the whole catalogue (the layouts safe line by line,
//! within the first 40 characters, epochs only right at the line start as today), so a file that mixes
//! two layouts still reads.
//!
//! Per line the reader gives what `log_formats._parse_generic` gave: the time text, the time (UTC,
//! naive, year missing), a reject reason (`timestamp_out_of_range`, or `bad_timestamp` for a time
//! followed by an ambiguous zone abbreviation), a level word found at any position (as a word, in
//! today's vocabulary) and the rest of the line as the message.

use std::sync::{Arc, OnceLock};

use arrow_array::builder::{BooleanBuilder, Int32Builder, LargeStringBuilder};
use arrow_array::{ArrayRef, TimestampNanosecondArray};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use rayon::prelude::*;
use regex::Regex;

use crate::arrow_out::{import_array, string_rows, ArrowBatch};
use crate::guard::guarded;
use crate::layouts::{self, Found, Outcome};

/// Lines of the sample a layout is learned from (log_formats.SAMPLE_LINES).
pub const SAMPLE_LINES: usize = 64;
/// How far into a line a time may begin when searched character by character (today's `.{0,40}?`).
const PREFIX_CHARS: usize = 40;
/// How many leading whitespace-separated fields the learned layout may skip (a host, a pid, a
/// sequence number...), and within how many bytes.
const PREFIX_FIELDS: usize = 8;
const PREFIX_FIELD_BYTES: usize = 160;
/// Epochs read line by line (not learned) only after at most this many non-word characters (today).
const EPOCH_LEAD: usize = 3;

const LEVELS: &str =
    "TRACE|DEBUG|INFO|NOTICE|WARN|WARNING|ERROR|ERR|CRIT|CRITICAL|FATAL|ALERT|EMERG|SEVERE";

fn level_word() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        // No capture group: `find` runs the fast engines; the word is cut out of the match below.
        let pattern = format!(
            r"(?:^|[\s\[(<|:])(?:level=)?(?:{LEVELS}|[Tt]race|[Dd]ebug|[Ii]nfo|[Nn]otice|[Ww]arn(?:ing)?|[Ee]rror|[Cc]ritical|[Ff]atal)(?:$|[\s\]):>|,])"
        );
        Regex::new(&pattern).unwrap_or_else(|_| unreachable!("the level pattern is a constant"))
    })
}

/// The span of the first level word in `text` (as a word, maybe after `level=`), offset by `base`.
fn find_level(text: &str, base: usize) -> Option<(usize, usize)> {
    let m = level_word().find(text)?;
    let word = m.as_str();
    // Level words begin and end with ASCII letters: what precedes or follows them in the match is
    // the boundary (one character, maybe multi-byte whitespace) and `level=`.
    let start = word.find(|c: char| c.is_ascii_alphabetic())?;
    let start = if word[start..].starts_with("level=") {
        start + 6
    } else {
        start
    };
    let end = word.rfind(|c: char| c.is_ascii_alphabetic())? + 1;
    (start < end).then_some((base + m.start() + start, base + m.start() + end))
}

fn leading_level() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        let pattern = format!(r"^[\[(<]?(?:level=)?(?:{LEVELS})[\])>]?(?:\s*[:|-]\s*|\s+|$)");
        Regex::new(&pattern)
            .unwrap_or_else(|_| unreachable!("the leading-level pattern is a constant"))
    })
}

/// Calls `try_at` on the candidate start positions of a time in `line`, in order, until it returns
/// Some: every character boundary within the first [`PREFIX_CHARS`] characters; with `fields`, then
/// the starts of the first [`PREFIX_FIELDS`] whitespace-separated fields beyond them.
fn first_position<T>(
    line: &str,
    fields: bool,
    mut try_at: impl FnMut(usize) -> Option<T>,
) -> Option<T> {
    let mut last = 0;
    for (count, (i, _)) in line.char_indices().enumerate() {
        if count > PREFIX_CHARS {
            break;
        }
        if let Some(found) = try_at(i) {
            return Some(found);
        }
        last = i;
    }
    if !fields {
        return None;
    }
    let b = line.as_bytes();
    let mut seen = 0;
    let mut i = 0;
    while i < b.len() && i < PREFIX_FIELD_BYTES && seen < PREFIX_FIELDS {
        if b[i].is_ascii_whitespace() {
            while i < b.len() && b[i].is_ascii_whitespace() {
                i += 1;
            }
            seen += 1;
            if i > last && i < b.len() {
                if let Some(found) = try_at(i) {
                    return Some(found);
                }
            }
        } else {
            i += 1;
        }
    }
    None
}

/// The learned layout at its earliest position in `line`.
fn read_learned(line: &str, layout: usize) -> Option<Found> {
    first_position(line, true, |at| {
        layouts::read_at(layout, line.as_bytes(), at)
    })
}

/// The line-safe layouts by the class of their first byte (digit, upper-case letter, `[`), in
/// catalogue order: a position is only tried against the layouts that can begin with its byte.
fn fallback_by_class() -> &'static [Vec<usize>; 3] {
    static BY_CLASS: OnceLock<[Vec<usize>; 3]> = OnceLock::new();
    BY_CLASS.get_or_init(|| {
        let mut classes: [Vec<usize>; 3] = [Vec::new(), Vec::new(), Vec::new()];
        for (index, layout) in layouts::catalogue().iter().enumerate() {
            if !layout.fallback {
                continue;
            }
            for (class, probe) in [b"1".as_slice(), b"A", b"["].iter().enumerate() {
                if layouts::may_start(layout, probe, 0) {
                    classes[class].push(index);
                }
            }
        }
        classes
    })
}

/// Line by line: the first position (within the first 40 characters) where a line-safe layout reads.
fn read_any(line: &str) -> Option<Found> {
    let b = line.as_bytes();
    if !b.iter().take(PREFIX_FIELD_BYTES).any(u8::is_ascii_digit) {
        return None; // every layout has digits
    }
    let classes = fallback_by_class();
    first_position(line, false, |at| {
        let first = *b.get(at)?;
        let before = at
            .checked_sub(1)
            .and_then(|i| b.get(i))
            .copied()
            .unwrap_or(b' ');
        let candidates = if first.is_ascii_digit() && !before.is_ascii_digit() {
            &classes[0]
        } else if first.is_ascii_uppercase() && !before.is_ascii_alphabetic() {
            &classes[1]
        } else if first == b'[' {
            &classes[2]
        } else {
            return None;
        };
        let epoch_ok = at <= EPOCH_LEAD
            && b[..at]
                .iter()
                .all(|c| !c.is_ascii_alphanumeric() && *c != b'_');
        candidates.iter().find_map(|&index| {
            let layout = layouts::catalogue().get(index)?;
            if layout.epoch.is_some() && !epoch_ok {
                return None;
            }
            layouts::read_at(index, b, at)
        })
    })
}

/// Read one line: the learned layout first, then the catalogue.
pub fn read_line(line: &str, learned: Option<usize>) -> Option<Found> {
    learned
        .and_then(|l| read_learned(line, l))
        .or_else(|| read_any(line))
}

/// The layout learned from `sample` (non-empty lines): (layout index, lines it reads). None when no
/// layout reads any line.
pub fn learn(sample: &[&str]) -> Option<(usize, usize)> {
    let mut best: Option<((usize, i64, usize, usize), usize)> = None;
    for (index, layout) in layouts::catalogue().iter().enumerate() {
        let mut hits = 0usize;
        let mut position_sum = 0i64;
        let mut length_sum = 0usize;
        for line in sample {
            if let Some(found) = read_learned(line, index) {
                hits += 1;
                position_sum += i64::try_from(found.start).unwrap_or(i64::MAX / 1024);
                length_sum += found.rest - found.start;
            }
        }
        if hits == 0 {
            continue;
        }
        // Higher is better: more lines, then earlier (a smaller mean position), then more specific
        // (more of the line read as time: `22:15:29:606` over `22:15:29`), then more tokens.
        let mean_position = position_sum / i64::try_from(hits).unwrap_or(1);
        let score = (hits, -mean_position, length_sum / hits, layout.tokens.len());
        if best.as_ref().is_none_or(|(b, _)| score > *b) {
            best = Some((score, index));
        }
    }
    best.map(|((hits, _, _, _), index)| (index, hits))
}

/// What one line gives (spans into the line, so no string is copied until the columns are built).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LineOut {
    pub head: bool,
    pub layout: Option<usize>,
    pub ts: Option<(usize, usize)>,
    pub utc: Option<i64>,
    pub naive: Option<i64>,
    pub year_missing: bool,
    /// 1: bad_timestamp, 2: timestamp_out_of_range.
    pub reject: u8,
    pub level: Option<(usize, usize)>,
    pub message: Option<(usize, usize)>,
}

/// Skip `^[\]\)>]?[\s,:|\-\]]*` (today's cleanup of the text after the time).
fn message_start(line: &str, rest: usize) -> usize {
    let b = line.as_bytes();
    let mut i = rest;
    if matches!(b.get(i), Some(b']' | b')' | b'>')) {
        i += 1;
    }
    while let Some(&c) = b.get(i) {
        if c.is_ascii_whitespace() || matches!(c, b',' | b':' | b'|' | b'-' | b']') {
            i += 1;
        } else {
            break;
        }
    }
    // The cleanup only skips ASCII bytes, so `i` stays on a character boundary.
    i
}

/// Parse one line.
pub fn parse_line(line: &str, learned: Option<usize>) -> LineOut {
    let Some(found) = read_line(line, learned) else {
        return LineOut::default();
    };
    let mut out = LineOut {
        layout: Some(found.layout),
        ts: Some((found.start, found.end)),
        ..LineOut::default()
    };
    match found.outcome {
        Outcome::Utc(ns) => {
            out.utc = Some(ns);
            out.head = true;
        }
        Outcome::Naive { ns, year_missing } => {
            out.naive = Some(ns);
            out.year_missing = year_missing;
            out.head = true;
        }
        Outcome::OutOfRange => out.reject = 2,
        Outcome::AmbiguousZone => out.reject = 1,
    }
    let start = message_start(line, found.rest).min(line.len());
    let message = line.get(start..).unwrap_or("");
    if out.head {
        // A level word anywhere in the message, else in the prefix before the time.
        out.level = find_level(message, start)
            .or_else(|| find_level(line.get(..found.start).unwrap_or(""), 0));
    }
    let skip = leading_level().find(message).map_or(0, |m| m.end());
    out.message = Some((start + skip, line.len()));
    out
}

/// The sample a layout is learned from: the first [`SAMPLE_LINES`] non-blank lines.
pub fn sample_of<'a>(lines: &[Option<&'a str>]) -> Vec<&'a str> {
    lines
        .iter()
        .flatten()
        .filter(|l| !l.trim().is_empty())
        .take(SAMPLE_LINES)
        .copied()
        .collect()
}

/// Parse all lines (in parallel) into the columns of a ParsedLines frame.
pub fn parse_lines(
    lines: &[Option<&str>],
    learned: Option<usize>,
) -> Result<ArrowBatch, arrow_schema::ArrowError> {
    let outs: Vec<LineOut> = lines
        .par_iter()
        .with_min_len(2048)
        .map(|line| line.map_or_else(LineOut::default, |l| parse_line(l, learned)))
        .collect();
    let n = lines.len();
    let mut head = BooleanBuilder::with_capacity(n);
    let mut year_missing = BooleanBuilder::with_capacity(n);
    let mut layout = Int32Builder::with_capacity(n);
    let mut ts_raw = LargeStringBuilder::with_capacity(n, n * 24);
    let mut reject = LargeStringBuilder::with_capacity(n, 0);
    let mut level = LargeStringBuilder::with_capacity(n, n * 5);
    let mut message =
        LargeStringBuilder::with_capacity(n, lines.iter().flatten().map(|l| l.len()).sum());
    let mut utc = Vec::with_capacity(n);
    let mut naive = Vec::with_capacity(n);
    for (line, out) in lines.iter().zip(&outs) {
        let text = line.unwrap_or("");
        let piece = |s: Option<(usize, usize)>| s.and_then(|(a, b)| text.get(a..b));
        head.append_value(out.head);
        year_missing.append_value(out.year_missing);
        layout.append_option(out.layout.and_then(|l| i32::try_from(l).ok()));
        ts_raw.append_option(piece(out.ts));
        reject.append_option(match out.reject {
            1 => Some("bad_timestamp"),
            2 => Some("timestamp_out_of_range"),
            _ => None,
        });
        level.append_option(piece(out.level));
        message.append_option(piece(out.message));
        utc.push(out.utc);
        naive.push(out.naive);
    }
    ArrowBatch::from_columns(vec![
        ("head", Arc::new(head.finish()) as ArrayRef),
        ("reject_reason", Arc::new(reject.finish())),
        ("ts_raw", Arc::new(ts_raw.finish())),
        (
            "ts_utc",
            Arc::new(TimestampNanosecondArray::from(utc).with_timezone("UTC")),
        ),
        ("ts_naive", Arc::new(TimestampNanosecondArray::from(naive))),
        ("year_missing", Arc::new(year_missing.finish())),
        ("level", Arc::new(level.finish())),
        ("message", Arc::new(message.finish())),
        ("layout", Arc::new(layout.finish())),
    ])
}

/// The catalogue: one dict per layout (name, spec, source, fallback, has_year, two_digit_year,
/// has_zone, epoch, fraction_digits).
#[pyfunction]
pub fn generic_layouts(py: Python<'_>) -> PyResult<Vec<Bound<'_, pyo3::types::PyDict>>> {
    guarded(py, "the layout catalogue", || {
        layouts::catalogue()
            .iter()
            .map(|l| {
                let d = pyo3::types::PyDict::new(py);
                d.set_item("name", l.name)?;
                d.set_item("spec", l.spec)?;
                d.set_item("source", l.source)?;
                d.set_item("fallback", l.fallback)?;
                d.set_item("has_year", l.has_year)?;
                d.set_item("two_digit_year", l.two_digit_year)?;
                d.set_item("has_zone", l.has_zone)?;
                d.set_item("epoch", l.epoch.is_some())?;
                d.set_item("fraction_digits", l.fraction_digits)?;
                d.set_item("has_seconds", l.has_seconds)?;
                Ok(d)
            })
            .collect()
    })
}

/// Learn the layout of `sample` (the file's first non-blank lines): (layout name, lines it reads,
/// sample size), the name None when no layout reads any line.
#[pyfunction]
pub fn generic_learn(
    py: Python<'_>,
    sample: Vec<String>,
) -> PyResult<(Option<String>, usize, usize)> {
    guarded(py, "the sample lines", || {
        let lines: Vec<&str> = sample
            .iter()
            .map(String::as_str)
            .filter(|l| !l.trim().is_empty())
            .take(SAMPLE_LINES)
            .collect();
        let learned = py.detach(|| learn(&lines));
        Ok(match learned {
            Some((index, hits)) => (
                layouts::catalogue().get(index).map(|l| l.name.to_owned()),
                hits,
                lines.len(),
            ),
            None => (None, 0, lines.len()),
        })
    })
}

/// Read a string array of lines with the layout named `layout` (learned from the lines' own first
/// non-blank lines when None). Returns a batch with the columns head, reject_reason, ts_raw, ts_utc,
/// ts_naive, year_missing, level (the raw word), message and layout (catalogue index).
#[pyfunction]
#[pyo3(signature = (lines, layout, source))]
pub fn generic_parse(
    py: Python<'_>,
    lines: &Bound<'_, PyAny>,
    layout: Option<&str>,
    source: &str,
) -> PyResult<ArrowBatch> {
    guarded(py, source, || {
        let array = import_array(lines)?;
        let rows = string_rows(&array)?;
        let learned = match layout {
            Some(name) => Some(layouts::by_name(name).ok_or_else(|| {
                PyValueError::new_err(format!("unknown timestamp layout {name:?}"))
            })?),
            None => None,
        };
        py.detach(|| {
            let learned = learned.or_else(|| learn(&sample_of(&rows)).map(|(index, _)| index));
            parse_lines(&rows, learned)
        })
        .map_err(|err| PyValueError::new_err(err.to_string()))
    })
}

/// Write the time `ns` in layout `layout` (for tests: logs rewritten into every layout). None when the
/// layout cannot hold the time.
#[pyfunction]
#[pyo3(signature = (layout, ns, offset_minutes=None))]
pub fn generic_render(
    py: Python<'_>,
    layout: &str,
    ns: i64,
    offset_minutes: Option<i32>,
) -> PyResult<Option<String>> {
    guarded(py, "a rendered time", || {
        let index = layouts::by_name(layout)
            .ok_or_else(|| PyValueError::new_err(format!("unknown timestamp layout {layout:?}")))?;
        Ok(layouts::render(index, ns, offset_minutes))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn learned_name(sample: &[&str]) -> Option<&'static str> {
        learn(sample)
            .and_then(|(i, _)| layouts::catalogue().get(i))
            .map(|l| l.name)
    }

    #[test]
    fn learns_proxifier_android_and_healthapp() {
        assert_eq!(
            learned_name(&["[10.30 16:49:06] chrome.exe - proxy open"]),
            Some("proxifier")
        );
        assert_eq!(
            learned_name(&["03-17 16:13:38.811  1702  2395 D WindowManager: x"]),
            Some("android")
        );
        assert_eq!(
            learned_name(&["20171223-22:15:29:606|Step_LSC|30002312|onStandStepChanged 3579"]),
            Some("healthapp")
        );
    }

    #[test]
    fn learns_an_epoch_after_prefix_fields() {
        let sample = [
            "134681 node-246 unix.hw state_change.unavailable 1077804742 1 Component State Change",
            "2568643 node-70 action start 1074119817 1 clusterAddMember  (command 1902)",
        ];
        assert_eq!(learned_name(&sample), Some("epoch_s"));
        let out = parse_line(sample[0], learn(&sample).map(|(i, _)| i));
        assert_eq!(out.utc, Some(1_077_804_742_000_000_000));
    }

    #[test]
    fn prefers_the_earliest_time() {
        let line = "- 1131566461 2005.11.09 dn228 Nov 9 12:01:01 dn228/dn228 crond[2916]: x";
        assert_eq!(learned_name(&[line]), Some("epoch_s"));
    }

    #[test]
    fn level_anywhere_and_message_without_leading_level() {
        let line = "2024-01-01 10:00:00 INFO started";
        let out = parse_line(line, None);
        assert_eq!(out.level.and_then(|(a, b)| line.get(a..b)), Some("INFO"));
        assert_eq!(
            out.message.and_then(|(a, b)| line.get(a..b)),
            Some("started")
        );
        let line =
            "2024-01-01 10:00:00 node-1 component-with-a-long-name-here something went [error] x";
        let out = parse_line(line, None);
        assert_eq!(out.level.and_then(|(a, b)| line.get(a..b)), Some("error"));
    }

    #[test]
    fn lines_without_time_are_not_heads() {
        let out = parse_line("    at com.example.Foo.bar(Foo.java:42)", None);
        assert_eq!(out, LineOut::default());
    }

    #[test]
    fn a_file_mixing_two_layouts_reads() {
        let learned = learn(&["2024-01-01 10:00:00 a"]).map(|(i, _)| i);
        assert!(parse_line("Jan  5 10:00:00 host b", learned).head);
    }
}

#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn no_input_panics(line in ".{0,200}") {
            let learned = learn(&[line.as_str()]).map(|(i, _)| i);
            let _ = parse_line(&line, learned);
            let _ = parse_line(&line, None);
        }

        #[test]
        fn damaged_times_do_not_panic(line in "[0-9 :./\\-TZ+APMJanFebCSTUTC\\[\\]]{0,60}") {
            for index in 0..layouts::catalogue().len() {
                let _ = layouts::read_at(index, line.as_bytes(), 0);
                let _ = parse_line(&line, Some(index));
            }
        }

        #[test]
        fn every_layout_round_trips(seconds in 946_684_800i64..3_000_000_000i64, nanos in 0i64..1_000_000_000, offset in -720i32..840) {
            for (index, layout) in layouts::catalogue().iter().enumerate() {
                let keep = match layout.fraction_digits { 0 => 1_000_000_000, 3 => 1_000_000, 6 => 1_000, _ => 1 };
                let seconds = if layout.has_seconds { seconds } else { seconds - seconds.rem_euclid(60) };
                let ns = seconds * 1_000_000_000 + nanos / keep * keep;
                let offset = layout.has_zone.then_some(offset);
                let Some(text) = layouts::render(index, ns, offset) else { continue };
                let found = layouts::read_at(index, text.as_bytes(), 0);
                let expected = if layout.epoch.is_some() || offset.is_some() {
                    Some(Outcome::Utc(ns))
                } else if layout.has_year {
                    Some(Outcome::Naive { ns, year_missing: false })
                } else {
                    // Year-less: the wall time in the placeholder year (Feb 29 exists in 2000).
                    let wall = chrono::DateTime::from_timestamp_nanos(ns).naive_utc();
                    let placed = chrono::NaiveDate::from_ymd_opt(layouts::PLACEHOLDER_YEAR, chrono::Datelike::month(&wall), chrono::Datelike::day(&wall))
                        .and_then(|d| d.and_time(wall.time()).and_utc().timestamp_nanos_opt());
                    placed.map(|p| Outcome::Naive { ns: p, year_missing: true })
                };
                prop_assert_eq!(found.map(|f| f.outcome), expected, "{} {}", layout.name, text);
                prop_assert_eq!(found.map(|f| f.rest), Some(text.len()), "{} {}", layout.name, text);
            }
        }
    }
}
