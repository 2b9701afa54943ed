//! JSON lines: a block of lines to flattened records, mapped onto the event columns.
//!
//! Each line is decoded as one JSON object (Python's `json` grammar: `NaN`, `Infinity` and
//! `-Infinity` are numbers, a duplicated key keeps its first position and its last value, a lone
//! surrogate escape becomes three U+FFFD as Python's round trip through UTF-8 made it). Nested
//! non-empty objects are flattened into dotted keys; arrays stay as JSON text. A line nested deeper
//! than [`MAX_DEPTH`] is rejected `too_deep` before it is decoded; text that is no JSON is
//! `json_decode`, a JSON value that is no object `json_not_object`.
//!
//! The block's keys are ordered as pyarrow's NDJSON reader ordered them (the reader this replaces):
//! a tree of keys in order of first appearance, flattened depth first. Keys are looked up in the
//! event-column table that Python passes in (one definition, in `log_formats.py`); the block comes
//! back as one Arrow batch: the reject reason, one column per event column that a key mapped to
//! (text, or numbers for the numeric columns), `fields` (every other key, as a JSON object text) and
//! the raw keys that a format asked for by name. Lines are decoded on every core (rayon), with the
//! GIL released.
//!
//! The decoder is written here rather than taken from serde_json because serde_json refuses what
//! Python's `json` accepted in the reader this replaces (`NaN`, `Infinity`, lone surrogate escapes)
//! and does not keep integers beyond 64 bits as written; those lines would have become rejects.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::{
    Array, ArrayRef, Float64Array, GenericStringArray, LargeStringArray, OffsetSizeTrait,
};
use arrow_buffer::{Buffer, NullBuffer, OffsetBuffer, ScalarBuffer};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use rayon::prelude::*;

use crate::arrow_out::{import_array, ArrowBatch};
use crate::guard::guarded;

/// The key maps hash a few short keys per line, where SipHash's cost showed. foldhash is as fast on
/// short keys and seeded per process, so log content (untrusted) cannot choose keys that collide.
type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// Objects and arrays nested deeper than this are rejected `too_deep` (`MAX_JSON_DEPTH` in Python).
pub const MAX_DEPTH: i64 = 64;
/// Lines decoded together by one rayon task.
const SLICE_LINES: usize = 4096;

pub const TOO_DEEP: &str = "too_deep";
pub const DECODE: &str = "json_decode";
pub const NOT_OBJECT: &str = "json_not_object";

// ------------------------------------------------------------------------------------------------
// Decoding

/// A decoded JSON value; strings borrow from the line unless they held escapes.
#[derive(Debug, Clone, PartialEq)]
pub enum Val<'a> {
    Null,
    Bool(bool),
    /// An integer as written (any size; `-0` is written `0`).
    Int(Cow<'a, str>),
    Float(f64),
    Str(Cow<'a, str>),
    List(Vec<Val<'a>>),
    Obj(Vec<(Cow<'a, str>, Val<'a>)>),
}

struct Parser<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
}

/// Text that is no JSON (the reason is always `json_decode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Invalid;

type Decoded<T> = Result<T, Invalid>;

impl<'a> Parser<'a> {
    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.bytes.get(self.pos) {
            self.pos += 1;
        }
    }

    fn eat(&mut self, literal: &str) -> bool {
        if self.bytes[self.pos..].starts_with(literal.as_bytes()) {
            self.pos += literal.len();
            true
        } else {
            false
        }
    }

    fn value(&mut self, depth: i64) -> Decoded<Val<'a>> {
        if depth > MAX_DEPTH {
            return Err(Invalid);
        }
        self.skip_ws();
        match self.bytes.get(self.pos) {
            Some(b'{') => {
                self.pos += 1;
                self.object(depth + 1)
            }
            Some(b'[') => {
                self.pos += 1;
                self.array(depth + 1)
            }
            Some(b'"') => {
                self.pos += 1;
                Ok(Val::Str(self.string()?))
            }
            Some(b't') if self.eat("true") => Ok(Val::Bool(true)),
            Some(b'f') if self.eat("false") => Ok(Val::Bool(false)),
            Some(b'n') if self.eat("null") => Ok(Val::Null),
            Some(b'N') if self.eat("NaN") => Ok(Val::Float(f64::NAN)),
            Some(b'I') if self.eat("Infinity") => Ok(Val::Float(f64::INFINITY)),
            Some(b'-') if self.eat("-Infinity") => Ok(Val::Float(f64::NEG_INFINITY)),
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ => Err(Invalid),
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.pos;
        while let Some(b'0'..=b'9') = self.bytes.get(self.pos) {
            self.pos += 1;
        }
        self.pos - start
    }

    fn number(&mut self) -> Decoded<Val<'a>> {
        let start = self.pos;
        let negative = self.bytes[self.pos] == b'-';
        if negative {
            self.pos += 1;
        }
        let int_start = self.pos;
        let int_digits = self.digits();
        // JSON: no leading zeros (Python's decoder then stops at the "0" and finds extra data).
        if int_digits == 0 || (int_digits > 1 && self.bytes[int_start] == b'0') {
            return Err(Invalid);
        }
        let mut is_float = false;
        if self.bytes.get(self.pos) == Some(&b'.') {
            let dot = self.pos;
            self.pos += 1;
            if self.digits() == 0 {
                self.pos = dot; // "1." is the number 1 followed by extra data: an error either way
                return Err(Invalid);
            }
            is_float = true;
        }
        if let Some(b'e' | b'E') = self.bytes.get(self.pos) {
            let mark = self.pos;
            self.pos += 1;
            if let Some(b'+' | b'-') = self.bytes.get(self.pos) {
                self.pos += 1;
            }
            if self.digits() == 0 {
                self.pos = mark;
                return Err(Invalid);
            }
            is_float = true;
        }
        let text = &self.text[start..self.pos];
        if is_float {
            text.parse::<f64>().map(Val::Float).map_err(|_| Invalid)
        } else if text == "-0" {
            Ok(Val::Int(Cow::Borrowed("0")))
        } else {
            Ok(Val::Int(Cow::Borrowed(text)))
        }
    }

    fn hex4(&mut self) -> Decoded<u32> {
        let chunk = self.bytes.get(self.pos..self.pos + 4).ok_or(Invalid)?;
        let mut code = 0u32;
        for &b in chunk {
            code = code * 16 + (b as char).to_digit(16).ok_or(Invalid)?;
        }
        self.pos += 4;
        Ok(code)
    }

    /// The string whose opening quote was just consumed.
    fn string(&mut self) -> Decoded<Cow<'a, str>> {
        let start = self.pos;
        // Fast path: no escapes.
        loop {
            match self.bytes.get(self.pos) {
                None => return Err(Invalid),
                Some(b'"') => {
                    let text = &self.text[start..self.pos];
                    self.pos += 1;
                    return Ok(Cow::Borrowed(text));
                }
                Some(b'\\') => break,
                Some(&b) if b < 0x20 => return Err(Invalid),
                Some(_) => self.pos += 1,
            }
        }
        let mut out = String::with_capacity(self.pos - start + 16);
        out.push_str(&self.text[start..self.pos]);
        loop {
            let run = self.pos;
            while let Some(&b) = self.bytes.get(self.pos) {
                if b == b'"' || b == b'\\' || b < 0x20 {
                    break;
                }
                self.pos += 1;
            }
            out.push_str(&self.text[run..self.pos]);
            match self.bytes.get(self.pos) {
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(Cow::Owned(out));
                }
                Some(b'\\') => {
                    self.pos += 1;
                    let escape = *self.bytes.get(self.pos).ok_or(Invalid)?;
                    self.pos += 1;
                    match escape {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => self.unicode_escape(&mut out)?,
                        _ => return Err(Invalid),
                    }
                }
                _ => return Err(Invalid),
            }
        }
    }

    /// `\uXXXX` (after the `u`): a surrogate pair makes one character; a lone surrogate becomes the
    /// three U+FFFD that Python's decoder left after its round trip through UTF-8 ("replace").
    fn unicode_escape(&mut self, out: &mut String) -> Decoded<()> {
        let code = self.hex4()?;
        if (0xD800..0xDC00).contains(&code) && self.bytes[self.pos..].starts_with(b"\\u") {
            let mark = self.pos;
            self.pos += 2;
            let low = self.hex4()?;
            if (0xDC00..0xE000).contains(&low) {
                let combined = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
                out.push(char::from_u32(combined).ok_or(Invalid)?);
                return Ok(());
            }
            self.pos = mark; // not a pair: the second escape is read on its own
        }
        match char::from_u32(code) {
            Some(c) => out.push(c),
            None => out.push_str("\u{FFFD}\u{FFFD}\u{FFFD}"),
        }
        Ok(())
    }

    fn array(&mut self, depth: i64) -> Decoded<Val<'a>> {
        let mut items = Vec::new();
        self.skip_ws();
        if self.bytes.get(self.pos) == Some(&b']') {
            self.pos += 1;
            return Ok(Val::List(items));
        }
        loop {
            items.push(self.value(depth)?);
            self.skip_ws();
            match self.bytes.get(self.pos) {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return Ok(Val::List(items));
                }
                _ => return Err(Invalid),
            }
        }
    }

    fn object(&mut self, depth: i64) -> Decoded<Val<'a>> {
        let mut members: Vec<(Cow<'a, str>, Val<'a>)> = Vec::new();
        // Built once an object has many keys, so duplicates are found in constant time.
        let mut index: Option<HashMap<Cow<'a, str>, usize>> = None;
        self.skip_ws();
        if self.bytes.get(self.pos) == Some(&b'}') {
            self.pos += 1;
            return Ok(Val::Obj(members));
        }
        loop {
            self.skip_ws();
            if self.bytes.get(self.pos) != Some(&b'"') {
                return Err(Invalid);
            }
            self.pos += 1;
            let key = self.string()?;
            self.skip_ws();
            if self.bytes.get(self.pos) != Some(&b':') {
                return Err(Invalid);
            }
            self.pos += 1;
            let value = self.value(depth)?;
            // A duplicated key keeps its first position and takes the last value (Python's dict).
            let found = match &index {
                Some(map) => map.get(&key).copied(),
                None => members.iter().position(|(k, _)| *k == key),
            };
            match found {
                Some(at) => members[at].1 = value,
                None => {
                    if let Some(map) = index.as_mut() {
                        map.insert(key.clone(), members.len());
                    }
                    members.push((key, value));
                    if index.is_none() && members.len() > 32 {
                        index = Some(
                            members
                                .iter()
                                .enumerate()
                                .map(|(i, (k, _))| (k.clone(), i))
                                .collect(),
                        );
                    }
                }
            }
            self.skip_ws();
            match self.bytes.get(self.pos) {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(Val::Obj(members));
                }
                _ => return Err(Invalid),
            }
        }
    }
}

/// Decode one JSON text (the whole line).
pub fn decode(text: &str) -> Decoded<Val<'_>> {
    let mut parser = Parser {
        text,
        bytes: text.as_bytes(),
        pos: 0,
    };
    let value = parser.value(0)?;
    parser.skip_ws();
    if parser.pos == text.len() {
        Ok(value)
    } else {
        Err(Invalid)
    }
}

/// How deep a text nests brackets outside its string literals: the running sum of `[{` minus `]}`
/// after each literal `"(?:[^"\\]|\\.)*"` is blanked (so it is defined, and the same as before,
/// for text that is no JSON at all).
pub fn nesting_depth(text: &[u8]) -> i64 {
    let mut depth = 0i64;
    let mut deepest = 0i64;
    let mut i = 0;
    while i < text.len() {
        match text[i] {
            b'"' => {
                let mut j = i + 1;
                let mut closed = None;
                while j < text.len() {
                    match text[j] {
                        b'"' => {
                            closed = Some(j);
                            break;
                        }
                        b'\\' => {
                            if j + 1 >= text.len() || text[j + 1] == b'\n' {
                                break;
                            }
                            j += 2;
                        }
                        _ => j += 1,
                    }
                }
                // An unclosed quote is only a character: the scan goes on after it.
                i = closed.map_or(i + 1, |end| end + 1);
                continue;
            }
            b'{' | b'[' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b'}' | b']' => depth -= 1,
            _ => {}
        }
        i += 1;
    }
    deepest
}

/// One line decoded: its reject reason, or its top-level object.
pub fn decode_line(line: Option<&str>) -> Result<Vec<(Cow<'_, str>, Val<'_>)>, &'static str> {
    let Some(text) = line else {
        return Err(DECODE);
    };
    if nesting_depth(text.as_bytes()) > MAX_DEPTH {
        return Err(TOO_DEEP);
    }
    match decode(text) {
        Ok(Val::Obj(members)) => Ok(members),
        Ok(_) => Err(NOT_OBJECT),
        Err(Invalid) => Err(DECODE),
    }
}

// ------------------------------------------------------------------------------------------------
// Keys: a tree in order of first appearance

/// The keys of a block: one node per key path, children in order of first appearance.
#[derive(Default, Debug)]
pub struct KeyTree {
    names: Vec<String>,
    parents: Vec<u32>,
    children: Vec<Vec<u32>>,
    /// parent -> child name -> child (looked up by &str: no allocation per key of a line).
    lookup: FastMap<u32, FastMap<String, u32>>,
    /// A node held a non-null value (a scalar, an array or an empty object) in some line.
    valued: Vec<bool>,
    /// A node held null in some line (it is a column of its own only if it never had children).
    nulled: Vec<bool>,
}

impl KeyTree {
    fn new() -> Self {
        let mut tree = Self::default();
        tree.push_node(0, String::new());
        tree
    }

    fn push_node(&mut self, parent: u32, name: String) -> u32 {
        let id = self.names.len() as u32;
        self.names.push(name);
        self.parents.push(parent);
        self.children.push(Vec::new());
        self.valued.push(false);
        self.nulled.push(false);
        id
    }

    fn child(&mut self, parent: u32, name: &str) -> u32 {
        if let Some(&id) = self.lookup.get(&parent).and_then(|m| m.get(name)) {
            return id;
        }
        let id = self.push_node(parent, name.to_owned());
        self.children[parent as usize].push(id);
        self.lookup
            .entry(parent)
            .or_default()
            .insert(name.to_owned(), id);
        id
    }

    /// The dotted name of a node.
    fn path(&self, mut id: u32) -> String {
        let mut parts = Vec::new();
        while id != 0 {
            parts.push(self.names[id as usize].as_str());
            id = self.parents[id as usize];
        }
        parts.reverse();
        parts.join(".")
    }

    /// Nodes in depth-first order (the order of pyarrow's flattened columns).
    fn preorder(&self) -> Vec<u32> {
        let mut out = Vec::with_capacity(self.names.len());
        let mut stack: Vec<u32> = self.children[0].iter().rev().copied().collect();
        while let Some(id) = stack.pop() {
            out.push(id);
            stack.extend(self.children[id as usize].iter().rev());
        }
        out
    }

    /// Add `other`'s nodes below this tree's (after its own, in `other`'s order); returns the map
    /// from `other`'s node ids to this tree's.
    fn merge(&mut self, other: &KeyTree) -> Vec<u32> {
        let mut map = vec![0u32; other.names.len()];
        for id in other.preorder() {
            let parent = map[other.parents[id as usize] as usize];
            let mine = self.child(parent, &other.names[id as usize]);
            self.valued[mine as usize] |= other.valued[id as usize];
            self.nulled[mine as usize] |= other.nulled[id as usize];
            map[id as usize] = mine;
        }
        map
    }
}

/// One line's leaf values, by node of the slice's key tree.
type Row<'a> = Result<Vec<(u32, Val<'a>)>, &'static str>;

fn flatten<'a>(tree: &mut KeyTree, members: Vec<(Cow<'a, str>, Val<'a>)>) -> Vec<(u32, Val<'a>)> {
    let mut leaves = Vec::new();
    // An explicit stack: no depth of input reaches the call stack.
    let mut stack = vec![(0u32, members.into_iter())];
    while let Some((parent, items)) = stack.last_mut() {
        let parent = *parent;
        match items.next() {
            Some((key, Val::Obj(inner))) if !inner.is_empty() => {
                let node = tree.child(parent, &key);
                stack.push((node, inner.into_iter()));
            }
            Some((key, value)) => {
                let node = tree.child(parent, &key);
                if value == Val::Null {
                    tree.nulled[node as usize] = true;
                } else {
                    tree.valued[node as usize] = true;
                }
                leaves.push((node, value));
            }
            None => {
                stack.pop();
            }
        }
    }
    leaves
}

// ------------------------------------------------------------------------------------------------
// Rendering values as text

/// Python's `repr` of a float (shortest digits; exponent form outside 1e-4 <= |x| < 1e16).
pub fn python_float_repr(value: f64) -> String {
    if value.is_nan() {
        return "nan".to_owned();
    }
    if value.is_infinite() {
        return if value > 0.0 { "inf" } else { "-inf" }.to_owned();
    }
    // The shortest digits that read back (Rust's choice), then the value correctly rounded to that
    // many digits: where two such strings are equally near, Rust's shortest form may take either,
    // Python's repr the one rounded half to even (1513004304847469.25 -> ...469.2).
    let shortest = format!("{:e}", value.abs());
    let count = shortest
        .split_once('e')
        .map_or(1, |(m, _)| m.chars().filter(char::is_ascii_digit).count());
    let sci = format!("{:.*e}", count.saturating_sub(1), value.abs());
    let (mantissa, exponent) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let sign = if value.is_sign_negative() { "-" } else { "" };
    if (-4..16).contains(&exponent) {
        let point = exponent + 1; // digits before the decimal point
        if point <= 0 {
            format!("{sign}0.{}{digits}", "0".repeat((-point) as usize))
        } else if (point as usize) >= digits.len() {
            let zeros = "0".repeat(point as usize - digits.len());
            format!("{sign}{digits}{zeros}.0")
        } else {
            let (whole, fraction) = digits.split_at(point as usize);
            format!("{sign}{whole}.{fraction}")
        }
    } else {
        let (first, rest) = digits.split_at(1);
        let rest = if rest.is_empty() {
            String::new()
        } else {
            format!(".{rest}")
        };
        let esign = if exponent < 0 { '-' } else { '+' };
        format!("{sign}{first}{rest}e{esign}{:02}", exponent.abs())
    }
}

/// A float as the table's text: whole numbers below 2**63 as integers, others as Python prints them.
pub fn float_text(value: f64) -> String {
    if value.is_finite() && value == value.floor() && value.abs() < 9.223_372_036_854_776e18 {
        format!("{}", value as i64)
    } else {
        python_float_repr(value)
    }
}

/// `json.dumps(text, ensure_ascii=False)` (key names and strings inside arrays).
fn dumps_str(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// The JSON string literal of the event columns' text (`json_quote`: control characters other than
/// newline, return and tab as `\u00XX`).
pub fn quote_str(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// `json.dumps(value, ensure_ascii=False)` with Python's separators (arrays and empty objects).
fn dumps(out: &mut String, value: &Val<'_>) {
    match value {
        Val::Null => out.push_str("null"),
        Val::Bool(true) => out.push_str("true"),
        Val::Bool(false) => out.push_str("false"),
        Val::Int(digits) => out.push_str(digits),
        Val::Float(f) if f.is_nan() => out.push_str("NaN"),
        Val::Float(f) if f.is_infinite() => {
            out.push_str(if *f > 0.0 { "Infinity" } else { "-Infinity" })
        }
        Val::Float(f) => out.push_str(&python_float_repr(*f)),
        Val::Str(text) => dumps_str(out, text),
        Val::List(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                dumps(out, item);
            }
            out.push(']');
        }
        Val::Obj(members) => {
            out.push('{');
            for (i, (key, item)) in members.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                dumps_str(out, key);
                out.push_str(": ");
                dumps(out, item);
            }
            out.push('}');
        }
    }
}

/// A value as text (`_as_key_text`): strings as they are, numbers and booleans as written, arrays and
/// empty objects as JSON; None for null.
pub fn key_text<'v>(value: &'v Val<'_>) -> Option<Cow<'v, str>> {
    Some(match value {
        Val::Null => return None,
        Val::Str(text) => Cow::Borrowed(text.as_ref()),
        Val::Int(digits) => Cow::Borrowed(digits.as_ref()),
        Val::Float(f) => Cow::Owned(float_text(*f)),
        Val::Bool(b) => Cow::Borrowed(if *b { "true" } else { "false" }),
        Val::List(_) | Val::Obj(_) => {
            let mut out = String::new();
            dumps(&mut out, value);
            Cow::Owned(out)
        }
    })
}

/// A value as the JSON text it has inside `fields` (`_json_value`); None for null.
fn field_json(out: &mut String, value: &Val<'_>) -> bool {
    match value {
        Val::Null => return false,
        Val::Str(text) => quote_str(out, text),
        Val::Int(digits) => out.push_str(digits),
        // NaN and infinities are no JSON: left out, as pyarrow's reader left them out.
        Val::Float(f) if !f.is_finite() => return false,
        Val::Float(f) => out.push_str(&float_text(*f)),
        _ => dumps(out, value),
    }
    true
}

/// `pandas.to_numeric` of a text: a float, or None where the text is no number (or NaN).
pub fn text_number(text: &str) -> Option<f64> {
    let trimmed = text.trim_matches(|c: char| c.is_ascii_whitespace() || c == '\u{b}');
    let body = trimmed.strip_prefix(['+', '-']).unwrap_or(trimmed);
    let negative = trimmed.starts_with('-');
    // Rust also reads "nan" and "infinity" in any case; pandas reads infinities in any case and
    // takes NaN for no number.
    if body.eq_ignore_ascii_case("inf") || body.eq_ignore_ascii_case("infinity") {
        return Some(if negative {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        });
    }
    if !body.starts_with(|c: char| c.is_ascii_digit() || c == '.') {
        return None;
    }
    trimmed.parse::<f64>().ok()
}

/// A value under a numeric key: its number, or the words it holds instead (kept in `fields`).
enum Numeric<'v> {
    Absent,
    Number(f64),
    Words(Cow<'v, str>),
}

fn numeric_value<'v>(value: &'v Val<'_>) -> Numeric<'v> {
    match value {
        Val::Null => Numeric::Absent,
        Val::Int(digits) => digits
            .parse::<f64>()
            .map_or(Numeric::Absent, Numeric::Number),
        Val::Float(f) if f.is_nan() => Numeric::Absent,
        Val::Float(f) => Numeric::Number(*f),
        other => match key_text(other) {
            None => Numeric::Absent,
            Some(text) => match text_number(&text) {
                Some(number) => Numeric::Number(number),
                None => Numeric::Words(text),
            },
        },
    }
}

// ------------------------------------------------------------------------------------------------
// The block

/// How the block's keys map onto event columns (from `log_formats._KEY_TARGETS`).
#[derive(Debug, Clone, Default)]
pub struct Mapping {
    /// Lower-cased key -> (priority, event column).
    pub targets: HashMap<String, (u32, String)>,
    /// Event columns that hold numbers.
    pub numeric: Vec<String>,
    /// Lower-cased key -> what its numbers are divided by (ECS `event.duration` is in nanoseconds).
    pub divisors: HashMap<String, f64>,
}

/// A text column being built: one values buffer, the end of each value, validity (no allocation per value).
#[derive(Debug, Default, Clone)]
pub struct TextColumn {
    data: Vec<u8>,
    ends: Vec<usize>,
    valid: Vec<bool>,
}

impl TextColumn {
    fn push(&mut self, value: Option<&str>) {
        if let Some(text) = value {
            self.data.extend_from_slice(text.as_bytes());
        }
        self.ends.push(self.data.len());
        self.valid.push(value.is_some());
    }

    fn append(&mut self, other: TextColumn) {
        let base = self.data.len();
        self.data.extend_from_slice(&other.data);
        self.ends.extend(other.ends.iter().map(|end| end + base));
        self.valid.extend(other.valid);
    }

    /// The values, for tests and small uses.
    pub fn values(&self) -> Vec<Option<String>> {
        let mut start = 0;
        let mut out = Vec::with_capacity(self.ends.len());
        for (end, valid) in self.ends.iter().zip(&self.valid) {
            out.push(valid.then(|| String::from_utf8_lossy(&self.data[start..*end]).into_owned()));
            start = *end;
        }
        out
    }

    fn to_array(&self) -> ArrayRef {
        let mut offsets = Vec::with_capacity(self.ends.len() + 1);
        offsets.push(0i64);
        offsets.extend(self.ends.iter().map(|end| *end as i64));
        let nulls = NullBuffer::from(self.valid.clone());
        let nulls = (nulls.null_count() > 0).then_some(nulls);
        // Every value was pushed as a whole &str and the ends only grow: valid offsets and UTF-8.
        Arc::new(LargeStringArray::new(
            OffsetBuffer::new(ScalarBuffer::from(offsets)),
            Buffer::from_vec(self.data.clone()),
            nulls,
        ))
    }
}

/// The output of a block, column by column, in Arrow-ready vectors.
pub struct Block {
    pub reject: Vec<Option<&'static str>>,
    /// (event column, values): text columns.
    pub text: Vec<(String, TextColumn)>,
    /// (event column, values): numeric columns.
    pub numbers: Vec<(String, Vec<Option<f64>>)>,
    /// Position of each mapped column in output order: (is_numeric, index into text/numbers).
    pub order: Vec<(bool, usize)>,
    pub fields: Option<TextColumn>,
    /// (key, values) for the keys asked for by name.
    pub keys: Vec<(String, TextColumn)>,
}

/// A flat column of the block: its name, and the nodes (in depth-first order) that bear it.
struct Column {
    name: String,
    nodes: Vec<u32>,
}

/// An event column, whether it holds numbers, and its keys as (priority, name, column).
type TargetKeys = (String, bool, Vec<(u32, String, usize)>);

struct Plan {
    columns: Vec<Column>,
    /// Node of the global tree -> its column (usize::MAX: none) and its place among that column's nodes.
    column_of: Vec<(usize, u32)>,
    /// Some column is borne by several nodes (a key written dotted and nested).
    collisions: bool,
    /// Event columns in output order, each with its keys (priority, column index) sorted.
    targets: Vec<(String, bool, Vec<usize>)>,
    rest: Vec<usize>,
    divisors: Vec<f64>,
    asked: Vec<Option<usize>>,
}

fn plan(tree: &KeyTree, mapping: Option<&Mapping>, keys: &[String]) -> Plan {
    let mut columns: Vec<Column> = Vec::new();
    let mut by_name: HashMap<String, usize> = HashMap::new();
    let mut column_of = vec![(usize::MAX, 0u32); tree.names.len()];
    for id in tree.preorder() {
        let i = id as usize;
        let is_column = tree.valued[i] || (tree.nulled[i] && tree.children[i].is_empty());
        if !is_column {
            continue;
        }
        let name = tree.path(id);
        let at = *by_name.entry(name.clone()).or_insert_with(|| {
            columns.push(Column {
                name,
                nodes: Vec::new(),
            });
            columns.len() - 1
        });
        column_of[id as usize] = (at, columns[at].nodes.len() as u32);
        columns[at].nodes.push(id);
    }
    let mut targets: Vec<TargetKeys> = Vec::new();
    let mut rest = Vec::new();
    let mut divisors = vec![1.0; columns.len()];
    for (at, column) in columns.iter().enumerate() {
        let lower = column.name.to_lowercase();
        let found = mapping.and_then(|m| m.targets.get(&lower).map(|t| (m, t)));
        match found {
            None => {
                rest.push(at);
            }
            Some((m, (priority, target))) => {
                let slot = targets
                    .iter()
                    .position(|(name, _, _)| name == target)
                    .unwrap_or_else(|| {
                        targets.push((target.clone(), m.numeric.contains(target), Vec::new()));
                        targets.len() - 1
                    });
                targets[slot].2.push((*priority, column.name.clone(), at));
                if let Some(divisor) = m.divisors.get(&lower) {
                    divisors[at] = *divisor;
                }
            }
        }
    }
    let targets = targets
        .into_iter()
        .map(|(name, numeric, mut keys)| {
            keys.sort();
            (
                name,
                numeric,
                keys.into_iter().map(|(_, _, at)| at).collect(),
            )
        })
        .collect();
    let asked = keys.iter().map(|k| by_name.get(k).copied()).collect();
    let collisions = columns.iter().any(|c| c.nodes.len() > 1);
    Plan {
        columns,
        column_of,
        collisions,
        targets,
        rest,
        divisors,
        asked,
    }
}

/// One slice of lines decoded: its rows and its own key tree.
struct Slice<'a> {
    rows: Vec<Row<'a>>,
    tree: KeyTree,
}

fn decode_slice<'a>(lines: &[Option<&'a str>]) -> Slice<'a> {
    let mut tree = KeyTree::new();
    let rows = lines
        .iter()
        .map(|line| decode_line(*line).map(|members| flatten(&mut tree, members)))
        .collect();
    Slice { rows, tree }
}

/// The rendered output of one slice.
struct Rendered {
    reject: Vec<Option<&'static str>>,
    text: Vec<TextColumn>,
    numbers: Vec<Vec<Option<f64>>>,
    fields: TextColumn,
    keys: Vec<TextColumn>,
}

fn render_slice(slice: &Slice<'_>, map: &[u32], plan: &Plan) -> Rendered {
    let n = slice.rows.len();
    let text_targets: Vec<usize> = (0..plan.targets.len())
        .filter(|t| !plan.targets[*t].1)
        .collect();
    let numeric_targets: Vec<usize> = (0..plan.targets.len())
        .filter(|t| plan.targets[*t].1)
        .collect();
    let mut out = Rendered {
        reject: Vec::with_capacity(n),
        text: vec![TextColumn::default(); text_targets.len()],
        numbers: vec![Vec::with_capacity(n); numeric_targets.len()],
        fields: TextColumn::default(),
        keys: vec![TextColumn::default(); plan.asked.len()],
    };
    // This slice's nodes -> (column, place among the column's nodes).
    let local: Vec<(usize, u32)> = map.iter().map(|g| plan.column_of[*g as usize]).collect();
    let mut fields = String::new();
    // Per row: the value of each column (the first non-null of the nodes that bear its name).
    let mut values: Vec<Option<&Val<'_>>> = vec![None; plan.columns.len()];
    let mut rank: Vec<usize> = Vec::new();
    let mut touched: Vec<usize> = Vec::new();
    for row in &slice.rows {
        for &c in &touched {
            values[c] = None;
        }
        touched.clear();
        let leaves = match row {
            Err(reason) => {
                out.reject.push(Some(*reason));
                &[][..]
            }
            Ok(leaves) => {
                out.reject.push(None);
                &leaves[..]
            }
        };
        // Nodes of one name: the first in depth-first order wins, so visit them in that order.
        rank.clear();
        rank.extend(0..leaves.len());
        if plan.collisions && leaves.len() > 1 {
            rank.sort_by_key(|i| local[leaves[*i].0 as usize]);
        }
        for &i in &rank {
            let column = local[leaves[i].0 as usize].0;
            if column == usize::MAX {
                continue;
            }
            if values[column].is_none() && leaves[i].1 != Val::Null {
                values[column] = Some(&leaves[i].1);
                touched.push(column);
            }
        }
        for (slot, &t) in text_targets.iter().enumerate() {
            let text = plan.targets[t]
                .2
                .iter()
                .find_map(|&c| values[c].and_then(key_text));
            out.text[slot].push(text.as_deref());
        }
        let mut worded: Vec<(usize, Cow<'_, str>)> = Vec::new();
        for (slot, &t) in numeric_targets.iter().enumerate() {
            let mut number = None;
            for &c in &plan.targets[t].2 {
                match values[c].map_or(Numeric::Absent, numeric_value) {
                    Numeric::Number(v) if number.is_none() => number = Some(v / plan.divisors[c]),
                    Numeric::Words(words) => worded.push((c, words)),
                    _ => {}
                }
            }
            out.numbers[slot].push(number);
        }
        fields.clear();
        for &c in &plan.rest {
            if let Some(value) = values[c] {
                let mark = fields.len();
                fields.push(',');
                dumps_str(&mut fields, &plan.columns[c].name);
                fields.push(':');
                if !field_json(&mut fields, value) {
                    fields.truncate(mark);
                }
            }
        }
        // Words under numeric keys come last, by event column then key (as the Python side did).
        for (c, words) in &worded {
            fields.push(',');
            dumps_str(&mut fields, &plan.columns[*c].name);
            fields.push(':');
            quote_str(&mut fields, words);
        }
        if fields.is_empty() {
            out.fields.push(None);
        } else {
            fields.replace_range(0..1, "{");
            fields.push('}');
            out.fields.push(Some(&fields));
        }
        for (slot, asked) in plan.asked.iter().enumerate() {
            let text = asked.and_then(|c| values[c]).and_then(key_text);
            out.keys[slot].push(text.as_deref());
        }
    }
    out
}

/// Decode and map a block of lines (None: a null line).
pub fn parse_block(lines: &[Option<&str>], mapping: Option<&Mapping>, keys: &[String]) -> Block {
    let slices: Vec<Slice<'_>> = lines.par_chunks(SLICE_LINES).map(decode_slice).collect();
    let mut tree = KeyTree::new();
    let maps: Vec<Vec<u32>> = slices.iter().map(|s| tree.merge(&s.tree)).collect();
    let plan = plan(&tree, mapping, keys);
    let rendered: Vec<Rendered> = slices
        .par_iter()
        .zip(maps.par_iter())
        .map(|(slice, map)| render_slice(slice, map, &plan))
        .collect();
    let mut block = Block {
        reject: Vec::with_capacity(lines.len()),
        text: Vec::new(),
        numbers: Vec::new(),
        order: Vec::new(),
        fields: mapping
            .filter(|_| !plan.columns.is_empty())
            .map(|_| TextColumn::default()),
        keys: keys
            .iter()
            .map(|k| (k.clone(), TextColumn::default()))
            .collect(),
    };
    if mapping.is_some() {
        for (name, numeric, _) in &plan.targets {
            if *numeric {
                block.order.push((true, block.numbers.len()));
                block
                    .numbers
                    .push((name.clone(), Vec::with_capacity(lines.len())));
            } else {
                block.order.push((false, block.text.len()));
                block.text.push((name.clone(), TextColumn::default()));
            }
        }
    }
    for part in rendered {
        block.reject.extend(part.reject);
        if mapping.is_some() {
            for (slot, values) in part.text.into_iter().enumerate() {
                block.text[slot].1.append(values);
            }
            for (slot, values) in part.numbers.into_iter().enumerate() {
                block.numbers[slot].1.extend(values);
            }
            if let Some(fields) = block.fields.as_mut() {
                fields.append(part.fields);
            }
        }
        for (slot, values) in part.keys.into_iter().enumerate() {
            block.keys[slot].1.append(values);
        }
    }
    block
}

// ------------------------------------------------------------------------------------------------
// Arrow in and out

fn large_strings<S: AsRef<str>>(values: &[Option<S>]) -> ArrayRef {
    let total: usize = values
        .iter()
        .map(|v| v.as_ref().map_or(0, |s| s.as_ref().len()))
        .sum();
    let mut data = Vec::with_capacity(total);
    let mut offsets = Vec::with_capacity(values.len() + 1);
    offsets.push(0i64);
    let mut valid = Vec::with_capacity(values.len());
    for value in values {
        if let Some(text) = value {
            data.extend_from_slice(text.as_ref().as_bytes());
        }
        valid.push(value.is_some());
        offsets.push(data.len() as i64);
    }
    let nulls = NullBuffer::from(valid);
    let nulls = (nulls.null_count() > 0).then_some(nulls);
    // The offsets grow monotonically from 0 and every value is a whole &str: valid by construction.
    let array = LargeStringArray::new(
        OffsetBuffer::new(ScalarBuffer::from(offsets)),
        Buffer::from_vec(data),
        nulls,
    );
    Arc::new(array)
}

fn floats(values: &[Option<f64>]) -> ArrayRef {
    Arc::new(Float64Array::from(values.to_vec()))
}

fn block_batch(block: &Block) -> Result<ArrowBatch, arrow_schema::ArrowError> {
    let mut columns: Vec<(String, ArrayRef)> =
        vec![("reject_reason".to_owned(), large_strings(&block.reject))];
    for &(numeric, at) in &block.order {
        if numeric {
            let (name, values) = &block.numbers[at];
            columns.push((name.clone(), floats(values)));
        } else {
            let (name, values) = &block.text[at];
            columns.push((name.clone(), values.to_array()));
        }
    }
    if let Some(fields) = &block.fields {
        columns.push(("fields".to_owned(), fields.to_array()));
    }
    for (key, values) in &block.keys {
        columns.push((format!("key:{key}"), values.to_array()));
    }
    ArrowBatch::from_columns(
        columns
            .iter()
            .map(|(n, a)| (n.as_str(), a.clone()))
            .collect(),
    )
}

fn lines_of<O: OffsetSizeTrait>(array: &GenericStringArray<O>) -> Vec<Option<&str>> {
    array.iter().collect()
}

/// Decode a block of JSON lines (a pyarrow string or large_string array) into one Arrow batch.
///
/// Columns: `reject_reason` (null where the line is an object); with `targets` (lower-cased key ->
/// (priority, event column)), each event column a key mapped to (numbers for `numeric`, divided by
/// `divisors[key]`), then `fields` (if the block has any key); then `key:<name>` for each of `keys`.
#[pyfunction]
#[pyo3(signature = (lines, source, targets=None, numeric=Vec::new(), divisors=HashMap::new(), keys=Vec::new()))]
pub fn parse_json_lines(
    py: Python<'_>,
    lines: &Bound<'_, PyAny>,
    source: &str,
    targets: Option<HashMap<String, (u32, String)>>,
    numeric: Vec<String>,
    divisors: HashMap<String, f64>,
    keys: Vec<String>,
) -> PyResult<ArrowBatch> {
    let array = import_array(lines)?;
    guarded(py, source, || {
        let mapping = targets.map(|targets| Mapping {
            targets,
            numeric,
            divisors,
        });
        let block = py.detach(|| {
            let text: Vec<Option<&str>> =
                if let Some(a) = array.as_any().downcast_ref::<LargeStringArray>() {
                    lines_of(a)
                } else if let Some(a) = array.as_any().downcast_ref::<GenericStringArray<i32>>() {
                    lines_of(a)
                } else {
                    return Err(format!(
                        "JSON lines must be an Arrow string array, not {}",
                        array.data_type()
                    ));
                };
            let block = parse_block(&text, mapping.as_ref(), &keys);
            block_batch(&block).map_err(|err| err.to_string())
        });
        block.map_err(PyTypeError::new_err)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn mapping() -> Mapping {
        let mut targets = HashMap::new();
        targets.insert("@timestamp".to_owned(), (0, "timestamp".to_owned()));
        targets.insert("message".to_owned(), (1, "message".to_owned()));
        targets.insert("msg".to_owned(), (5, "message".to_owned()));
        targets.insert("status".to_owned(), (9, "http_status".to_owned()));
        targets.insert("event.duration".to_owned(), (3, "duration_ms".to_owned()));
        let mut divisors = HashMap::new();
        divisors.insert("event.duration".to_owned(), 1e6);
        Mapping {
            targets,
            numeric: vec!["http_status".to_owned(), "duration_ms".to_owned()],
            divisors,
        }
    }

    fn block(lines: &[&str]) -> Block {
        let lines: Vec<Option<&str>> = lines.iter().map(|l| Some(*l)).collect();
        parse_block(&lines, Some(&mapping()), &["a.b".to_owned()])
    }

    #[test]
    fn reasons_name_what_is_wrong() {
        let deep = format!("{{\"a\":{}1{}}}", "[".repeat(70), "]".repeat(70));
        let b = block(&["{\"a\":1}", "[1]", "{\"a\":", "null", &deep, ""]);
        assert_eq!(
            b.reject,
            vec![
                None,
                Some(NOT_OBJECT),
                Some(DECODE),
                Some(NOT_OBJECT),
                Some(TOO_DEEP),
                Some(DECODE)
            ]
        );
    }

    #[test]
    fn nested_keys_are_dotted_in_order_of_first_appearance() {
        let b = block(&[
            "{\"z\":1,\"a\":{\"b\":\"x\"}}",
            "{\"a\":{\"c\":2.5},\"y\":[1,\"s\"]}",
        ]);
        let fields = b.fields.expect("keys").values();
        assert_eq!(fields[0].as_deref(), Some("{\"z\":1,\"a.b\":\"x\"}"));
        assert_eq!(fields[1].as_deref(), Some("{\"a.c\":2.5,\"y\":[1, \"s\"]}"));
        assert_eq!(b.keys[0].1.values(), vec![Some("x".to_owned()), None]);
    }

    #[test]
    fn mapped_keys_fill_event_columns_by_priority() {
        let b = block(&[
            "{\"msg\":\"low\",\"message\":\"high\",\"status\":\"503\",\"event.duration\":2000000}",
            "{\"msg\":\"only\",\"status\":\"failed\"}",
        ]);
        assert_eq!(b.text[0].0, "message");
        assert_eq!(
            b.text[0].1.values(),
            vec![Some("high".to_owned()), Some("only".to_owned())]
        );
        let status = &b
            .numbers
            .iter()
            .find(|(n, _)| n == "http_status")
            .expect("status")
            .1;
        assert_eq!(status, &vec![Some(503.0), None]);
        let duration = &b
            .numbers
            .iter()
            .find(|(n, _)| n == "duration_ms")
            .expect("duration")
            .1;
        assert_eq!(duration, &vec![Some(2.0), None]);
        let fields = b.fields.expect("fields").values();
        assert_eq!(fields[1].as_deref(), Some("{\"status\":\"failed\"}"));
    }

    #[test]
    fn surrogates_pair_or_become_replacement_characters() {
        let pair = decode("\"\\ud83d\\ude00\"").expect("valid");
        assert_eq!(pair, Val::Str(Cow::Owned("\u{1F600}".to_owned())));
        let lone = decode("\"a\\ud800b\"").expect("valid");
        assert_eq!(
            lone,
            Val::Str(Cow::Owned("a\u{FFFD}\u{FFFD}\u{FFFD}b".to_owned()))
        );
    }

    #[test]
    fn duplicate_keys_keep_their_first_place_and_last_value() {
        let b = block(&["{\"k\":1,\"j\":2,\"k\":3}"]);
        assert_eq!(
            b.fields.expect("fields").values()[0].as_deref(),
            Some("{\"k\":3,\"j\":2}")
        );
    }

    #[test]
    fn floats_print_as_python_prints_them() {
        assert_eq!(python_float_repr(1.5e-7), "1.5e-07");
        assert_eq!(python_float_repr(1e20), "1e+20");
        assert_eq!(python_float_repr(0.0001), "0.0001");
        assert_eq!(python_float_repr(123.25), "123.25");
        assert_eq!(python_float_repr(1e15), "1000000000000000.0");
        assert_eq!(python_float_repr(-0.0), "-0.0");
        assert_eq!(float_text(2.0), "2");
        assert_eq!(float_text(1e19), "1e+19");
        assert_eq!(python_float_repr(1513004304847469.2), "1513004304847469.2");
    }

    #[test]
    fn numbers_in_text_are_read_as_pandas_reads_them() {
        assert_eq!(text_number(" 500 "), Some(500.0));
        assert_eq!(text_number("1e3"), Some(1000.0));
        assert_eq!(text_number("failed"), None);
        assert_eq!(text_number("nan"), None);
        assert_eq!(text_number("--1"), None);
        assert_eq!(text_number("\t7\n"), Some(7.0));
        assert_eq!(text_number("-Infinity"), Some(f64::NEG_INFINITY));
        assert_eq!(text_number("INF"), Some(f64::INFINITY));
        assert_eq!(text_number(".5"), Some(0.5));
        assert_eq!(text_number("5."), Some(5.0));
    }

    #[test]
    fn depth_ignores_brackets_in_strings() {
        assert_eq!(nesting_depth(b"{\"a\":\"[[[[\"}"), 1);
        assert_eq!(nesting_depth(b"[[\"\\\"]]\"]]"), 2);
        assert_eq!(nesting_depth(b"\"[[["), 3);
    }

    proptest! {
        #[test]
        fn no_text_makes_the_decoder_panic(text in any::<String>()) {
            let _ = decode_line(Some(&text));
            let _ = block(&[&text, "{}"]);
        }

        #[test]
        fn float_repr_reads_back(value in any::<f64>().prop_filter("finite", |v| v.is_finite())) {
            let text = python_float_repr(value);
            prop_assert_eq!(text.parse::<f64>().ok().map(f64::to_bits), Some(value.to_bits()));
        }

        #[test]
        fn json_like_text_never_panics(text in "[\\[\\]{}\",:0-9a-z\\\\ .eE+-]{0,64}") {
            let _ = block(&[&text]);
        }

        #[test]
        fn flattening_keeps_every_leaf(keys in proptest::collection::vec("[a-c]{1,2}", 1..6), value in 0i64..1000) {
            // A chain of nested objects flattens to one dotted key holding the value.
            let mut text = value.to_string();
            for key in keys.iter().rev() {
                text = format!("{{\"{key}\":{text}}}");
            }
            let b = parse_block(&[Some(text.as_str())], Some(&Mapping::default()), &[keys.join(".")]);
            prop_assert_eq!(b.reject[0], None);
            let expected = value.to_string();
            let got = b.keys[0].1.values();
            prop_assert_eq!(got[0].as_deref(), Some(expected.as_str()));
        }

        #[test]
        fn decoded_objects_dump_back_to_equal_values(a in any::<i32>(), s in "\\PC{0,8}", f in any::<f64>()) {
            let mut line = String::from("{\"a\":");
            line.push_str(&a.to_string());
            line.push_str(",\"s\":");
            dumps_str(&mut line, &s);
            line.push_str(",\"f\":");
            dumps(&mut line, &Val::Float(f));
            line.push('}');
            let members = decode_line(Some(&line)).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(&members[1].1, &Val::Str(Cow::Owned(s.clone())));
            match &members[2].1 {
                Val::Float(g) => prop_assert!(g.to_bits() == f.to_bits() || (g.is_nan() && f.is_nan())),
                other => prop_assert!(false, "not a float: {:?}", other),
            }
        }
    }
}
