//! Named groups of a regular expression, matched over a column of lines (`_core.extract_groups`).
//!
//! The patterns are the project's (RE2 syntax, with `\d`, `\w`, `\s` and `\b` already spelled as
//! ASCII by `pmtimeline.polars_regex.polars_pattern`) and the user's TOML formats. They run in the
//! `regex` crate, in time linear in the text, over slices of the column on every core with the GIL
//! released. A pattern is compiled once and kept (the patterns are few: the built-in formats and a
//! user's format file).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use arrow_array::{ArrayRef, BooleanArray, LargeStringArray};
use arrow_buffer::{NullBuffer, OffsetBuffer, ScalarBuffer};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use rayon::prelude::*;
use regex::{CaptureLocations, Regex};

use crate::arrow_out::{import_array, string_rows, ArrowBatch};
use crate::guard::guarded;

/// Name of the boolean column that tells which rows matched (a group cannot take it: the name is
/// reserved by `pmtimeline.connectors.timeformats`).
pub const MATCHED: &str = "pmtimeline_matched";

/// Rows per slice handed to one rayon task.
const SLICE_ROWS: usize = 4096;

/// A pattern compiled for extraction.
#[derive(Debug)]
pub struct Compiled {
    /// What runs over each line: the whole pattern, or its anchored prefix when a tail group is cut.
    regex: Regex,
    /// Output column names of the capture groups of `regex` (group 1 first): a group's name, or its
    /// number counted as if the whole pattern were wrapped in one more group (polars' naming).
    names: Vec<String>,
    /// The name of a trailing `(?P<name>.*)$` cut off an anchored pattern: it takes the rest of the line.
    tail: Option<String>,
}

impl Compiled {
    /// Compile `pattern`, cutting a trailing `(?P<name>.*)$` off an anchored prefix.
    ///
    /// A trailing `(?P<message>.*)$` costs more to capture than all the other groups together (the
    /// capture engine walks the whole message), so when the rest of the pattern is an anchored prefix
    /// without a top-level `|`, the prefix is matched alone and the tail is the text after it. `.*$`
    /// matches any rest of a line without a newline. A folded event (lines joined by newlines) keeps
    /// its continuation lines in the tail, as the reader has always given them.
    pub fn new(pattern: &str) -> Result<Self, regex::Error> {
        let full = Regex::new(pattern)?;
        if let Some((prefix, tail)) = tail_cut(pattern) {
            if let Ok(regex) = Regex::new(prefix) {
                if regex.captures_len() + 1 == full.captures_len() {
                    let names = group_names(&regex);
                    return Ok(Self {
                        regex,
                        names,
                        tail: Some(tail.to_owned()),
                    });
                }
            }
        }
        let names = group_names(&full);
        Ok(Self {
            regex: full,
            names,
            tail: None,
        })
    }

    /// The output column names: the groups in order, then the tail group.
    pub fn column_names(&self) -> Vec<String> {
        let mut names = self.names.clone();
        names.extend(self.tail.iter().cloned());
        names
    }
}

fn group_names(regex: &Regex) -> Vec<String> {
    regex
        .capture_names()
        .enumerate()
        .skip(1)
        .map(|(index, name)| name.map_or_else(|| (index + 1).to_string(), str::to_owned))
        .collect()
}

/// `(prefix, tail name)` when `pattern` is `^prefix(?P<name>.*)$` and the prefix has no `|` outside
/// every group and class.
fn tail_cut(pattern: &str) -> Option<(&str, &str)> {
    let body = pattern.strip_suffix(".*)$")?;
    let open = body.rfind("(?P<")?;
    let name = body.get(open + 4..)?.strip_suffix('>')?;
    if name.is_empty() || !name.chars().all(|c| c.is_alphanumeric() || c == '_') {
        return None;
    }
    let prefix = body.get(..open)?;
    if !prefix.starts_with('^') || top_level_alternation(prefix) {
        return None;
    }
    Some((prefix, name))
}

/// Whether `pattern` has a `|` outside every group and class.
fn top_level_alternation(pattern: &str) -> bool {
    let bytes = pattern.as_bytes();
    let mut depth: i64 = 0;
    let mut in_class = false;
    let mut i = 0;
    while i < bytes.len() {
        let byte = bytes[i];
        if byte == b'\\' {
            i += 2;
            continue;
        }
        if in_class {
            in_class = byte != b']';
        } else if byte == b'[' {
            in_class = true;
            let rest = &bytes[i + 1..];
            if rest.starts_with(b"]") {
                i += 2;
                continue;
            }
            if rest.starts_with(b"^]") {
                i += 3;
                continue;
            }
        } else if byte == b'(' {
            depth += 1;
        } else if byte == b')' {
            depth -= 1;
        } else if byte == b'|' && depth == 0 {
            return true;
        }
        i += 1;
    }
    false
}

fn cache() -> &'static Mutex<HashMap<String, Arc<Compiled>>> {
    static CACHE: OnceLock<Mutex<HashMap<String, Arc<Compiled>>>> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(HashMap::new()))
}

/// The compiled form of `pattern`, from the cache or compiled now (and kept).
pub fn compiled(pattern: &str) -> Result<Arc<Compiled>, regex::Error> {
    let mut guard = cache()
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(found) = guard.get(pattern) {
        return Ok(Arc::clone(found));
    }
    let made = Arc::new(Compiled::new(pattern)?);
    guard.insert(pattern.to_owned(), Arc::clone(&made));
    Ok(made)
}

/// The extracted columns of one slice of rows.
struct Slice {
    /// Per output column: the concatenated values, the end offset of each row, and its validity.
    columns: Vec<(Vec<u8>, Vec<i64>, Vec<bool>)>,
    matched: Vec<bool>,
}

fn extract_slice(compiled: &Compiled, rows: &[Option<&str>]) -> Slice {
    let width = compiled.names.len() + usize::from(compiled.tail.is_some());
    let mut columns: Vec<(Vec<u8>, Vec<i64>, Vec<bool>)> = (0..width)
        .map(|_| {
            (
                Vec::new(),
                Vec::with_capacity(rows.len()),
                Vec::with_capacity(rows.len()),
            )
        })
        .collect();
    let mut matched = Vec::with_capacity(rows.len());
    let mut locations: CaptureLocations = compiled.regex.capture_locations();
    let push = |column: &mut (Vec<u8>, Vec<i64>, Vec<bool>), value: Option<&str>| {
        let value = value.filter(|text| !text.is_empty()); // "" (an empty or absent group) -> null
        if let Some(text) = value {
            column.0.extend_from_slice(text.as_bytes());
        }
        column.1.push(column.0.len() as i64);
        column.2.push(value.is_some());
    };
    for row in rows {
        let found = row.and_then(|text| {
            compiled
                .regex
                .captures_read(&mut locations, text)
                .map(|m| (text, m.end()))
        });
        matched.push(found.is_some());
        for (group, column) in columns.iter_mut().enumerate() {
            let value = found.and_then(|(text, end)| {
                if group < compiled.names.len() {
                    locations
                        .get(group + 1)
                        .and_then(|(start, stop)| text.get(start..stop))
                } else {
                    text.get(end..)
                }
            });
            push(column, value);
        }
    }
    Slice { columns, matched }
}

/// Run `compiled` over `rows` on every core: one column per group and the matched mask.
pub fn extract(compiled: &Compiled, rows: &[Option<&str>]) -> (Vec<ArrayRef>, BooleanArray) {
    let slices: Vec<Slice> = rows
        .par_chunks(SLICE_ROWS)
        .map(|part| extract_slice(compiled, part))
        .collect();
    let width = compiled.names.len() + usize::from(compiled.tail.is_some());
    let columns = (0..width)
        .map(|group| {
            let total: usize = slices.iter().map(|s| s.columns[group].0.len()).sum();
            let mut values = Vec::with_capacity(total);
            let mut offsets = Vec::with_capacity(rows.len() + 1);
            let mut valid = Vec::with_capacity(rows.len());
            offsets.push(0i64);
            for slice in &slices {
                let (data, ends, ok) = &slice.columns[group];
                let base = values.len() as i64;
                values.extend_from_slice(data);
                offsets.extend(ends.iter().map(|end| base + end));
                valid.extend_from_slice(ok);
            }
            let nulls = NullBuffer::from(valid);
            let array = LargeStringArray::new(
                OffsetBuffer::new(ScalarBuffer::from(offsets)),
                values.into(),
                (nulls.null_count() > 0).then_some(nulls),
            );
            Arc::new(array) as ArrayRef
        })
        .collect();
    let matched: Vec<bool> = slices.into_iter().flat_map(|s| s.matched).collect();
    (columns, BooleanArray::from(matched))
}

fn pattern_error(error: &regex::Error) -> PyErr {
    PyValueError::new_err(error.to_string())
}

/// Named groups of `pattern` matched (searched) in each line: one large_string column per group (null
/// where the line does not match, and where a group did not take part or matched nothing), and a
/// boolean column `pmtimeline_matched`. A pattern the engine refuses raises `ValueError` with its reason.
#[pyfunction]
pub fn extract_groups(
    py: Python<'_>,
    lines: &Bound<'_, PyAny>,
    pattern: &str,
) -> PyResult<ArrowBatch> {
    guarded(py, "extract_groups", || {
        let array = import_array(lines)?;
        let compiled = compiled(pattern).map_err(|err| pattern_error(&err))?;
        let rows = string_rows(&array)?;
        let (columns, matched) = py.detach(|| extract(&compiled, &rows));
        let names = compiled.column_names();
        let mut named: Vec<(&str, ArrayRef)> =
            names.iter().map(String::as_str).zip(columns).collect();
        named.push((MATCHED, Arc::new(matched) as ArrayRef));
        ArrowBatch::from_columns(named).map_err(|err| PyValueError::new_err(err.to_string()))
    })
}

/// Where `pattern` is found in each line (nulls are False), as a boolean array batch column `matched`.
#[pyfunction]
pub fn regex_search(
    py: Python<'_>,
    lines: &Bound<'_, PyAny>,
    pattern: &str,
) -> PyResult<ArrowBatch> {
    guarded(py, "regex_search", || {
        let array = import_array(lines)?;
        let regex = Regex::new(pattern).map_err(|err| pattern_error(&err))?;
        let rows = string_rows(&array)?;
        let found: Vec<bool> = py.detach(|| {
            rows.par_iter()
                .with_min_len(SLICE_ROWS)
                .map(|row| row.is_some_and(|text| regex.is_match(text)))
                .collect()
        });
        ArrowBatch::from_columns(vec![(
            MATCHED,
            Arc::new(BooleanArray::from(found)) as ArrayRef,
        )])
        .map_err(|err| PyValueError::new_err(err.to_string()))
    })
}

/// Why the engine refuses `pattern` (its own message, with a caret under the place), or None.
#[pyfunction]
pub fn regex_error(pattern: &str) -> Option<String> {
    Regex::new(pattern).err().map(|err| err.to_string())
}

/// The output column names `extract_groups` gives `pattern` (without `pmtimeline_matched`).
#[pyfunction]
pub fn regex_group_names(pattern: &str) -> PyResult<Vec<String>> {
    compiled(pattern)
        .map(|c| c.column_names())
        .map_err(|err| pattern_error(&err))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::cast::AsArray;
    use proptest::prelude::*;

    fn run(
        pattern: &str,
        rows: &[Option<&str>],
    ) -> (Vec<String>, Vec<Vec<Option<String>>>, Vec<bool>) {
        let compiled = Compiled::new(pattern).expect("a valid test pattern");
        let (columns, matched) = extract(&compiled, rows);
        let values = columns
            .iter()
            .map(|c| {
                c.as_string::<i64>()
                    .iter()
                    .map(|v| v.map(str::to_owned))
                    .collect()
            })
            .collect();
        (
            compiled.column_names(),
            values,
            matched.iter().map(|m| m == Some(true)).collect(),
        )
    }

    #[test]
    fn groups_and_tail() {
        let (names, values, matched) = run(
            r"^(?P<a>[0-9]+) (x)? ?(?P<message>.*)$",
            &[
                Some("12 x hello"),
                Some("nope"),
                None,
                Some("7 "),
                Some("7 a\nb"),
            ],
        );
        assert_eq!(names, vec!["a", "3", "message"]);
        assert_eq!(matched, vec![true, false, false, true, true]);
        assert_eq!(values[0][0].as_deref(), Some("12"));
        assert_eq!(values[1][0].as_deref(), Some("x"));
        assert_eq!(values[2][0].as_deref(), Some("hello"));
        assert_eq!(values[2][3], None); // "" -> null
        assert_eq!(values[2][4].as_deref(), Some("a\nb")); // a folded event keeps its lines
    }

    #[test]
    fn tail_cut_only_when_anchored_without_top_level_alternation() {
        assert_eq!(
            tail_cut(r"^(?P<a>\d+) (?P<message>.*)$"),
            Some((r"^(?P<a>\d+) ", "message"))
        );
        assert_eq!(tail_cut(r"(?P<a>\d+) (?P<message>.*)$"), None);
        assert_eq!(tail_cut(r"^a|b(?P<message>.*)$"), None);
        assert_eq!(tail_cut(r"^[|](?P<message>.*)$"), Some(("^[|]", "message")));
        assert_eq!(
            tail_cut(r"^(a|b)(?P<message>.*)$"),
            Some(("^(a|b)", "message"))
        );
    }

    #[test]
    fn refused_patterns_say_why() {
        assert!(Compiled::new(r"(?=a)").is_err());
        assert!(regex_error(r"a(").is_some());
        assert!(regex_error(r"a").is_none());
    }

    #[test]
    fn many_rows_cross_slices() {
        let texts: Vec<String> = (0..10_000).map(|i| format!("{i} m{i}")).collect();
        let rows: Vec<Option<&str>> = texts.iter().map(|t| Some(t.as_str())).collect();
        let (_, values, matched) = run(r"^(?P<n>\d+) (?P<message>.*)$", &rows);
        assert!(matched.iter().all(|m| *m));
        assert_eq!(values[1][9_999].as_deref(), Some("m9999"));
        assert_eq!(values[0][4_097].as_deref(), Some("4097"));
    }

    proptest! {
        #[test]
        fn tail_cut_gives_the_full_pattern_result(line in "\\PC{0,40}") {
            let pattern = r"^(?P<a>[0-9]*)[ :]?(?P<b>[a-z]+)? (?P<message>.*)$";
            let cut = run(pattern, &[Some(line.as_str())]);
            let whole = Regex::new(pattern).expect("valid");
            let expected = whole.captures(&line);
            prop_assert_eq!(cut.2[0], expected.is_some());
            if let Some(caps) = expected {
                for (i, name) in ["a", "b", "message"].iter().enumerate() {
                    let want = caps.name(name).map(|m| m.as_str().to_owned()).filter(|s| !s.is_empty());
                    prop_assert_eq!(&cut.1[i][0], &want);
                }
            }
        }

        #[test]
        fn no_panic_on_any_pattern_or_line(pattern in "\\PC{0,12}", line in "\\PC{0,30}") {
            if let Ok(compiled) = Compiled::new(&pattern) {
                let _ = extract(&compiled, &[Some(line.as_str()), None]);
            }
        }
    }
}
