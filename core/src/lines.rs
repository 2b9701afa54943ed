//! Splitting decoded-to-be bytes into lines, and the byte-order-mark / UTF-16 / UTF-32 layer before it.
//!
//! The rules are those of `pmtimeline/connectors/rawio.py`'s module docstring:
//!
//! * lines end at `\n`; one `\r` before it is removed, and so is a `\r` ending the file's last line;
//!   a lone `\r` is data;
//! * a line longer than `max_line_bytes` (raw bytes, NUL bytes included) is cut to that size on a UTF-8
//!   boundary (backing off at most three bytes) and counted as truncated; while scanning for the end of
//!   an over-long line that spans reads, only its first `max_line_bytes + 1` bytes are kept, so memory
//!   stays bounded;
//! * NUL bytes are removed; a line made only of NUL bytes stays as `""` and is rejected `nul_bytes`;
//! * invalid UTF-8 becomes U+FFFD (maximal subparts, as Python's `errors="replace"`), each replacement
//!   counted;
//! * the file's last line without `\n` is a line; when reading stopped early, it is rejected with the
//!   stop reason.
//!
//! The splitter keeps the read-by-read structure of the Python reader it replaces (one step's lines are
//! emitted together, the line that straddles two reads is joined first), so that the blocks handed to
//! Python are the same.

use std::sync::Arc;

use arrow_array::builder::LargeStringBuilder;
use arrow_array::{new_null_array, ArrayRef, LargeStringArray};
use arrow_buffer::{Buffer, OffsetBuffer, ScalarBuffer};
use arrow_schema::{ArrowError, DataType};
use memchr::{memchr, memchr2, memchr_iter, memrchr};

/// Reject reason of a line made only of NUL bytes.
pub const REJECT_NUL_BYTES: &str = "nul_bytes";

/// The lines of one read step, decoded, in the column layout they leave in.
#[derive(Default, Debug)]
pub struct DecodedLines {
    /// UTF-8 text of every line, back to back.
    pub values: Vec<u8>,
    /// `values[offsets[i]..offsets[i + 1]]` is line `i`; starts with 0.
    pub offsets: Vec<i64>,
    /// Per line: why the I/O layer rejects it, if it does.
    pub rejects: Vec<Option<String>>,
    /// Whether any line has a reject (most steps have none: the column is then all nulls).
    pub any_reject: bool,
    /// Per line: cut at `max_line_bytes`.
    pub truncated: Vec<bool>,
    /// Per line: invalid byte sequences replaced by U+FFFD.
    pub decode_errors: Vec<u32>,
}

impl DecodedLines {
    pub fn new() -> Self {
        Self {
            offsets: vec![0],
            ..Self::default()
        }
    }

    pub fn len(&self) -> usize {
        self.truncated.len()
    }

    pub fn is_empty(&self) -> bool {
        self.truncated.is_empty()
    }

    /// The text column (`large_string`), sharing nothing with the splitter's buffers.
    pub fn take_text(&mut self) -> Result<ArrayRef, ArrowError> {
        let offsets = std::mem::replace(&mut self.offsets, vec![0]);
        let values = std::mem::take(&mut self.values);
        let offsets = OffsetBuffer::new(ScalarBuffer::from(offsets));
        // SAFETY: `values` only ever receives valid UTF-8 (`push_line` appends a validated or lossily
        // decoded line, `push_lines` a region validated whole), and `offsets` are the line ends, each on
        // a character boundary, increasing from 0 to `values.len()`. Validating again would read every
        // byte a second time (the unit tests and proptests validate every array they build).
        Ok(Arc::new(unsafe {
            LargeStringArray::new_unchecked(offsets, Buffer::from_vec(values), None)
        }))
    }

    /// The reject column (`large_string`, null when the line is fine).
    pub fn take_rejects(&mut self) -> ArrayRef {
        let rejects = std::mem::take(&mut self.rejects);
        if !self.any_reject {
            return new_null_array(&DataType::LargeUtf8, rejects.len());
        }
        self.any_reject = false;
        let mut builder = LargeStringBuilder::with_capacity(rejects.len(), 16);
        for reject in &rejects {
            builder.append_option(reject.as_deref());
        }
        Arc::new(builder.finish())
    }

    /// Append one line. `raw` is the line without its `\n`; `tail_reason` is the reject of the file's
    /// last line when it ends without `\n` (None when it is fine).
    pub fn push_line(
        &mut self,
        raw: &[u8],
        limit: usize,
        terminated: bool,
        tail_reason: Option<&str>,
    ) {
        let mut raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let cut = raw.len() > limit;
        if cut {
            raw = &raw[..cut_point(raw, limit)];
        }
        let nul_only = !raw.is_empty() && raw.iter().all(|&byte| byte == 0);
        let start = self.values.len();
        let errors = if memchr(0, raw).is_some() {
            let kept: Vec<u8> = raw.iter().copied().filter(|&byte| byte != 0).collect();
            append_utf8_lossy(&mut self.values, &kept)
        } else {
            append_utf8_lossy(&mut self.values, raw)
        };
        debug_assert!(self.values.len() >= start);
        self.offsets.push(self.values.len() as i64);
        self.truncated.push(cut && !nul_only);
        self.decode_errors.push(errors);
        let reject = match (terminated, tail_reason) {
            (false, Some(reason)) => Some(reason.to_owned()),
            _ if nul_only => Some(REJECT_NUL_BYTES.to_owned()),
            _ => None,
        };
        self.any_reject |= reject.is_some();
        self.rejects.push(reject);
    }

    /// Append every line of `region`, which holds whole lines each ending with `\n`.
    pub fn push_lines(&mut self, region: &[u8], limit: usize) {
        // The common case, valid UTF-8 without CR or NUL, is validated once for the whole region.
        if memchr2(b'\r', 0, region).is_none() && std::str::from_utf8(region).is_ok() {
            self.values.reserve(region.len());
            let mut start = 0;
            for end in memchr_iter(b'\n', region) {
                let line = &region[start..end];
                if line.len() > limit {
                    self.push_line(line, limit, true, None);
                } else {
                    self.values.extend_from_slice(line);
                    self.offsets.push(self.values.len() as i64);
                    self.truncated.push(false);
                    self.decode_errors.push(0);
                    self.rejects.push(None);
                }
                start = end + 1;
            }
            return;
        }
        let mut start = 0;
        while let Some(found) = memchr(b'\n', &region[start..]) {
            self.push_line(&region[start..start + found], limit, true, None);
            start += found + 1;
        }
    }
}

/// Where to cut a line longer than `limit`: at `limit`, backed off (at most three bytes) so that the
/// first byte dropped does not continue a UTF-8 character.
fn cut_point(raw: &[u8], limit: usize) -> usize {
    let mut cut = limit;
    while cut > 0
        && cut > limit.saturating_sub(3)
        && raw.get(cut).is_some_and(|&byte| byte & 0xC0 == 0x80)
    {
        cut -= 1;
    }
    cut
}

/// Append `bytes` as UTF-8, each maximal invalid subpart replaced by U+FFFD; return the replacements.
pub fn append_utf8_lossy(out: &mut Vec<u8>, bytes: &[u8]) -> u32 {
    if std::str::from_utf8(bytes).is_ok() {
        out.extend_from_slice(bytes);
        return 0;
    }
    let mut errors = 0u32;
    for chunk in bytes.utf8_chunks() {
        out.extend_from_slice(chunk.valid().as_bytes());
        if !chunk.invalid().is_empty() {
            out.extend_from_slice("\u{FFFD}".as_bytes());
            errors = errors.saturating_add(1);
        }
    }
    errors
}

/// Cuts a stream of read steps into lines (see the module documentation).
#[derive(Debug)]
pub struct Splitter {
    limit: usize,
    /// The start of a line continued by the next step.
    pending: Vec<u8>,
    /// Inside an over-long line: its first `limit + 1` bytes are kept in `pending`, the rest dropped.
    discarding: bool,
}

impl Splitter {
    pub fn new(limit: usize) -> Self {
        Self {
            limit,
            pending: Vec::new(),
            discarding: false,
        }
    }

    fn bound_pending(&mut self) {
        if self.pending.len() > self.limit {
            // limit+1 bytes: the line still counts as longer than the limit when it is cut.
            self.pending.truncate(self.limit + 1);
            self.discarding = true;
        }
    }

    /// Split one step, appending the lines it completes to `out`.
    pub fn push(&mut self, step: &[u8], out: &mut DecodedLines) {
        let Some(first) = memchr(b'\n', step) else {
            if !self.discarding {
                self.pending.extend_from_slice(step);
                self.bound_pending();
            }
            return;
        };
        if !self.discarding {
            self.pending.extend_from_slice(&step[..first]);
        }
        out.push_line(&self.pending, self.limit, true, None);
        let last = memrchr(b'\n', step).unwrap_or(first);
        if last > first {
            out.push_lines(&step[first + 1..=last], self.limit);
        }
        self.pending.clear();
        self.pending.extend_from_slice(&step[last + 1..]);
        self.discarding = false;
        self.bound_pending();
    }

    /// The file's last line, when it ends without `\n`: rejected with `tail_reason` if given.
    pub fn finish(&mut self, tail_reason: Option<&str>, out: &mut DecodedLines) {
        if !self.pending.is_empty() {
            let pending = std::mem::take(&mut self.pending);
            out.push_line(&pending, self.limit, false, tail_reason);
        }
        self.discarding = false;
    }
}

/// The text encodings told by a byte order mark.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    Utf8,
    Utf16Le,
    Utf16Be,
    Utf32Le,
    Utf32Be,
}

impl Encoding {
    pub fn name(self) -> &'static str {
        match self {
            Self::Utf8 => "utf-8",
            Self::Utf16Le => "utf-16-le",
            Self::Utf16Be => "utf-16-be",
            Self::Utf32Le => "utf-32-le",
            Self::Utf32Be => "utf-32-be",
        }
    }

    /// The encoding a text starts in, and the length of its byte order mark (UTF-32 LE before UTF-16 LE:
    /// `FF FE 00 00` is UTF-32 LE, not UTF-16 LE starting with a NUL).
    pub fn from_bom(head: &[u8]) -> (Self, usize) {
        const MARKS: [(&[u8], Encoding); 5] = [
            (b"\xEF\xBB\xBF", Encoding::Utf8),
            (b"\xFF\xFE\x00\x00", Encoding::Utf32Le),
            (b"\x00\x00\xFE\xFF", Encoding::Utf32Be),
            (b"\xFF\xFE", Encoding::Utf16Le),
            (b"\xFE\xFF", Encoding::Utf16Be),
        ];
        for (mark, encoding) in MARKS {
            if head.starts_with(mark) {
                return (encoding, mark.len());
            }
        }
        (Self::Utf8, 0)
    }

    fn unit(self) -> usize {
        match self {
            Self::Utf8 => 1,
            Self::Utf16Le | Self::Utf16Be => 2,
            Self::Utf32Le | Self::Utf32Be => 4,
        }
    }
}

/// UTF-16 or UTF-32 to UTF-8, read step by read step, with Python's `errors="replace"` semantics: an
/// unpaired surrogate or an invalid code point is one U+FFFD; whatever remains at the end of the text
/// (a high surrogate, an incomplete code unit) is one U+FFFD.
#[derive(Debug)]
pub struct WideDecoder {
    encoding: Encoding,
    carry: Vec<u8>,
}

impl WideDecoder {
    pub fn new(encoding: Encoding, first: &[u8]) -> Self {
        Self {
            encoding,
            carry: first.to_vec(),
        }
    }

    fn unit_value(&self, bytes: &[u8]) -> u32 {
        let big = matches!(self.encoding, Encoding::Utf16Be | Encoding::Utf32Be);
        let fold = |acc: u32, &byte: &u8| (acc << 8) | u32::from(byte);
        if big {
            bytes.iter().fold(0, fold)
        } else {
            bytes.iter().rev().fold(0, fold)
        }
    }

    /// The UTF-8 of the whole code units of `carry + step`, with the replacement count; None when no
    /// whole unit is complete yet. A high surrogate ending the data waits for its pair.
    pub fn push(&mut self, step: &[u8]) -> Option<(Vec<u8>, u32)> {
        self.carry.extend_from_slice(step);
        let unit = self.encoding.unit();
        let mut cut = self.carry.len() - self.carry.len() % unit;
        if unit == 2 && cut >= 2 {
            let last = self.unit_value(&self.carry[cut - 2..cut]);
            if (0xD800..=0xDBFF).contains(&last) {
                cut -= 2;
            }
        }
        if cut == 0 {
            return None;
        }
        let rest = self.carry.split_off(cut);
        let data = std::mem::replace(&mut self.carry, rest);
        Some(self.transcode(&data))
    }

    /// The UTF-8 of what is left at the end of the text, if anything.
    pub fn finish(&mut self) -> Option<(Vec<u8>, u32)> {
        if self.carry.is_empty() {
            return None;
        }
        let data = std::mem::take(&mut self.carry);
        Some(self.transcode(&data))
    }

    fn transcode(&self, data: &[u8]) -> (Vec<u8>, u32) {
        let unit = self.encoding.unit();
        let mut out = Vec::with_capacity(data.len() + data.len() / 2);
        let mut errors = 0u32;
        let mut put = |out: &mut Vec<u8>, code: Option<char>| {
            let ch = code.unwrap_or_else(|| {
                errors = errors.saturating_add(1);
                '\u{FFFD}'
            });
            let mut buf = [0u8; 4];
            out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
        };
        let mut pos = 0;
        while pos + unit <= data.len() {
            let value = self.unit_value(&data[pos..pos + unit]);
            pos += unit;
            if unit == 4 {
                put(&mut out, char::from_u32(value));
            } else if (0xD800..=0xDBFF).contains(&value) {
                if pos + 2 <= data.len() {
                    let low = self.unit_value(&data[pos..pos + 2]);
                    if (0xDC00..=0xDFFF).contains(&low) {
                        pos += 2;
                        put(
                            &mut out,
                            char::from_u32(0x10000 + ((value - 0xD800) << 10) + (low - 0xDC00)),
                        );
                    } else {
                        put(&mut out, None);
                    }
                } else {
                    // A high surrogate at the end: one replacement for it and any odd byte after it.
                    put(&mut out, None);
                    pos = data.len();
                }
            } else {
                put(&mut out, char::from_u32(value));
            }
        }
        if pos < data.len() {
            put(&mut out, None);
        }
        (out, errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::Array;

    fn split(data: &[u8], steps: usize, limit: usize) -> DecodedLines {
        let mut out = DecodedLines::new();
        let mut splitter = Splitter::new(limit);
        for step in data.chunks(steps.max(1)) {
            splitter.push(step, &mut out);
        }
        splitter.finish(None, &mut out);
        out
    }

    fn texts(lines: &mut DecodedLines) -> Vec<String> {
        let text = lines.take_text().expect("valid utf-8");
        text.to_data()
            .validate_full()
            .expect("valid offsets and UTF-8");
        let text = text
            .as_any()
            .downcast_ref::<LargeStringArray>()
            .expect("large string");
        text.iter().map(|s| s.unwrap_or("").to_owned()).collect()
    }

    #[test]
    fn crlf_lone_cr_and_last_line() {
        let mut out = split(b"a\r\nb\rc\nd\r\r\n\r\nlast\r", 3, 64);
        assert_eq!(texts(&mut out), ["a", "b\rc", "d\r", "", "last"]);
    }

    #[test]
    fn long_lines_are_cut_on_a_character_boundary() {
        let mut data = vec![b'a'; 63];
        data.extend_from_slice("é".as_bytes());
        data.extend_from_slice(b"tail\nshort\n");
        for steps in [1, 5, 1000] {
            let mut out = split(&data, steps, 64);
            assert_eq!(texts(&mut out), ["a".repeat(63), "short".to_owned()]);
            assert_eq!(out.truncated, [true, false]);
        }
    }

    #[test]
    fn nul_only_lines_are_rejected_and_kept_empty() {
        let mut out = split(b"\0\0\nab\0c\n", 1000, 64);
        assert_eq!(out.rejects[0].as_deref(), Some(REJECT_NUL_BYTES));
        assert_eq!(out.rejects[1], None);
        assert_eq!(texts(&mut out), ["", "abc"]);
    }

    #[test]
    fn invalid_utf8_is_replaced_and_counted() {
        let mut out = split(b"a\xffb\xed\xa0\x80\n\xef\xbf\xbd\n", 1000, 64);
        assert_eq!(out.decode_errors, [4, 0]);
        assert_eq!(
            texts(&mut out),
            ["a\u{FFFD}b\u{FFFD}\u{FFFD}\u{FFFD}", "\u{FFFD}"]
        );
    }

    #[test]
    fn tail_reason_rejects_only_an_unterminated_last_line() {
        let mut out = DecodedLines::new();
        let mut splitter = Splitter::new(64);
        splitter.push(b"one\ntw", &mut out);
        splitter.finish(Some("truncated_archive"), &mut out);
        assert_eq!(out.rejects, [None, Some("truncated_archive".to_owned())]);
    }

    #[test]
    fn utf16_matches_python_replacement() {
        let cases: [(&[u8], &str, u32); 5] = [
            (b"\x00\xd8A\x00", "\u{FFFD}A", 1),
            (b"\x00\xd8A", "\u{FFFD}", 1),
            (b"A", "\u{FFFD}", 1),
            (b"\x00\xdcA\x00", "\u{FFFD}A", 1),
            (b"\x00\xd8\x00\xd8\x00\xdc", "\u{FFFD}\u{10000}", 1),
        ];
        for (data, text, errors) in cases {
            for step in 1..4 {
                let mut decoder = WideDecoder::new(Encoding::Utf16Le, b"");
                let mut out = Vec::new();
                let mut count = 0;
                for piece in data.chunks(step) {
                    if let Some((bytes, n)) = decoder.push(piece) {
                        out.extend(bytes);
                        count += n;
                    }
                }
                if let Some((bytes, n)) = decoder.finish() {
                    out.extend(bytes);
                    count += n;
                }
                assert_eq!(String::from_utf8(out).as_deref(), Ok(text), "{data:?}");
                assert_eq!(count, errors);
            }
        }
    }

    #[test]
    fn utf32_invalid_code_points_and_leftovers() {
        let mut decoder = WideDecoder::new(Encoding::Utf32Le, b"");
        let (text, errors) = decoder
            .push(b"A\x00\x00\x00\x00\xd8\x00\x00\x00\x00\x11\x00B")
            .expect("whole units");
        assert_eq!(String::from_utf8(text).as_deref(), Ok("A\u{FFFD}\u{FFFD}"));
        assert_eq!(errors, 2);
        let (text, errors) = decoder.finish().expect("a leftover byte");
        assert_eq!(String::from_utf8(text).as_deref(), Ok("\u{FFFD}"));
        assert_eq!(errors, 1);
    }

    #[test]
    fn boms_select_the_encoding() {
        assert_eq!(
            Encoding::from_bom(b"\xFF\xFE\x00\x00x"),
            (Encoding::Utf32Le, 4)
        );
        assert_eq!(Encoding::from_bom(b"\xFF\xFEa\x00"), (Encoding::Utf16Le, 2));
        assert_eq!(Encoding::from_bom(b"\xEF\xBB\xBFa"), (Encoding::Utf8, 3));
        assert_eq!(Encoding::from_bom(b"abc"), (Encoding::Utf8, 0));
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn line_count_is_newline_count(data in proptest::collection::vec(any::<u8>(), 0..400), steps in 1usize..70) {
                let out = split(&data, steps, 64);
                let newlines = data.iter().filter(|&&b| b == b'\n').count();
                let unterminated = usize::from(data.last().is_some_and(|&b| b != b'\n'));
                prop_assert_eq!(out.len(), newlines + unterminated);
                prop_assert_eq!(out.rejects.len(), out.len());
                prop_assert_eq!(out.offsets.len(), out.len() + 1);
                let mut out = out;
                let text = out.take_text().map_err(|err| TestCaseError::fail(err.to_string()))?;
                prop_assert!(text.to_data().validate_full().is_ok());
            }

            #[test]
            fn valid_text_round_trips(lines in proptest::collection::vec("[^\n\r\u{0}]{0,40}", 0..30), steps in 1usize..70) {
                let data = lines.iter().map(|line| format!("{line}\n")).collect::<String>();
                let mut out = split(data.as_bytes(), steps, 1 << 20);
                prop_assert_eq!(texts(&mut out), lines);
                prop_assert!(out.decode_errors.iter().all(|&n| n == 0));
            }

            #[test]
            fn a_region_is_split_as_its_lines_one_by_one(lines in proptest::collection::vec("[a-zé\u{0}\r\u{FFFD}]{0,80}", 0..20)) {
                let region: Vec<u8> = lines.iter().flat_map(|line| format!("{line}\n").into_bytes()).collect();
                let mut whole = DecodedLines::new();
                whole.push_lines(&region, 64);
                let mut one_by_one = DecodedLines::new();
                for line in &lines {
                    one_by_one.push_line(line.as_bytes(), 64, true, None);
                }
                prop_assert_eq!(&whole.values, &one_by_one.values);
                prop_assert_eq!(&whole.offsets, &one_by_one.offsets);
                prop_assert_eq!(&whole.truncated, &one_by_one.truncated);
                prop_assert_eq!(&whole.rejects, &one_by_one.rejects);
            }

            #[test]
            fn wide_text_never_panics(data in proptest::collection::vec(any::<u8>(), 0..200), steps in 1usize..9) {
                for encoding in [Encoding::Utf16Le, Encoding::Utf16Be, Encoding::Utf32Le, Encoding::Utf32Be] {
                    let mut decoder = WideDecoder::new(encoding, b"");
                    let mut out = Vec::new();
                    for piece in data.chunks(steps) {
                        if let Some((bytes, _)) = decoder.push(piece) {
                            out.extend(bytes);
                        }
                    }
                    if let Some((bytes, _)) = decoder.finish() {
                        out.extend(bytes);
                    }
                    prop_assert!(String::from_utf8(out).is_ok());
                }
            }
        }
    }
}
