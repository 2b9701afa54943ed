//! A source's bytes, read step by step: compression detected from magic bytes and undone, caps enforced.
//!
//! * gzip (`1f 8b`, every member, zero padding between members skipped), bzip2 (`BZh`, every stream),
//!   xz (`fd 37 7a 58 5a 00`, every stream) and zstd (`28 b5 2f fd`, every frame).
//! * A compressed stream that ends early stops reading with `truncated_archive`; a corrupt one with
//!   `read_error: <reason>`; the bytes decompressed before either are kept.
//! * Decompression stops past `max_decompressed_bytes` or past `max_compression_ratio` times the
//!   compressed size (never below [`RATIO_CAP_FLOOR`]): `decompressed_size_cap`. A `read_limit` (the
//!   head of a file, for format detection) stops reading the same way, with `read_limit`.
//! * An uncompressed file is read in steps of `read_size` bytes, optionally only a byte range of it.
//! * An archive member is read through its own stream (any [`Read`]); it is held to the same caps.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// The compression-ratio guard never stops a source before this many decompressed bytes.
pub const RATIO_CAP_FLOOR: u64 = 64 << 20;
/// Stop reasons.
pub const STOP_TRUNCATED_ARCHIVE: &str = "truncated_archive";
pub const STOP_SIZE_CAP: &str = "decompressed_size_cap";
pub const STOP_READ_LIMIT: &str = "read_limit";

/// Compressed bytes read from the source at a time.
const INPUT_BUFFER: usize = 1 << 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    Gzip,
    Bz2,
    Xz,
    Zstd,
}

impl Compression {
    pub fn name(self) -> &'static str {
        match self {
            Self::Gzip => "gzip",
            Self::Bz2 => "bz2",
            Self::Xz => "xz",
            Self::Zstd => "zstd",
        }
    }
}

/// The compression told by a source's first bytes (at least 6 of them when the source has them).
pub fn compression_of(magic: &[u8]) -> Option<Compression> {
    const MAGIC: [(&[u8], Compression); 4] = [
        (b"\x1f\x8b", Compression::Gzip),
        (b"BZh", Compression::Bz2),
        (b"\xfd7zXZ\x00", Compression::Xz),
        (b"\x28\xb5\x2f\xfd", Compression::Zstd),
    ];
    MAGIC
        .iter()
        .find(|(prefix, _)| magic.starts_with(prefix))
        .map(|&(_, compression)| compression)
}

/// The caps of a source.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub read_size: usize,
    pub max_decompressed_bytes: u64,
    pub max_compression_ratio: u64,
    pub read_limit: Option<u64>,
}

impl Limits {
    /// The cap on decompressed bytes for a source of `stored` compressed bytes, and the stop reason there.
    fn cap(&self, stored: u64) -> (u64, &'static str) {
        let cap = self.max_decompressed_bytes.min(
            self.max_compression_ratio
                .saturating_mul(stored)
                .max(RATIO_CAP_FLOOR),
        );
        match self.read_limit {
            Some(limit) if limit < cap => (limit, STOP_READ_LIMIT),
            _ => (cap, STOP_SIZE_CAP),
        }
    }
}

/// Counts the bytes read through it (the compressed bytes consumed: `bytes_in`).
struct Counting<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// `head` followed by the rest of `inner`: the bytes read to find the magic are not lost.
pub struct Prefixed<R> {
    head: Vec<u8>,
    at: usize,
    inner: R,
}

impl<R: Read> Read for Prefixed<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.at < self.head.len() {
            let n = buf.len().min(self.head.len() - self.at);
            buf[..n].copy_from_slice(&self.head[self.at..self.at + n]);
            self.at += n;
            return Ok(n);
        }
        self.inner.read(buf)
    }
}

/// Every member of a gzip stream; zero bytes between members are skipped (as gzip(1) and Python do).
struct GzipMembers<R: BufRead> {
    decoder: Option<flate2::bufread::GzDecoder<R>>,
    input: Option<R>,
}

impl<R: BufRead> GzipMembers<R> {
    fn new(input: R) -> Self {
        Self {
            decoder: None,
            input: Some(input),
        }
    }
}

impl<R: BufRead> Read for GzipMembers<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            if let Some(decoder) = self.decoder.as_mut() {
                let n = decoder.read(buf)?;
                if n > 0 {
                    return Ok(n);
                }
                // The member ended (its CRC and length checked): the next may follow.
                self.input = self
                    .decoder
                    .take()
                    .map(flate2::bufread::GzDecoder::into_inner);
            }
            let Some(mut input) = self.input.take() else {
                return Ok(0);
            };
            loop {
                let data = input.fill_buf()?;
                if data.is_empty() {
                    return Ok(0);
                }
                let zeros = data.iter().take_while(|&&byte| byte == 0).count();
                let all = zeros == data.len();
                input.consume(zeros);
                if !all {
                    break;
                }
            }
            self.decoder = Some(flate2::bufread::GzDecoder::new(input));
        }
    }
}

fn decompressor(
    compression: Compression,
    input: Box<dyn Read + Send>,
) -> io::Result<Box<dyn Read + Send>> {
    let input = BufReader::with_capacity(INPUT_BUFFER, input);
    Ok(match compression {
        Compression::Gzip => Box::new(GzipMembers::new(input)),
        Compression::Bz2 => Box::new(bzip2::bufread::MultiBzDecoder::new(input)),
        Compression::Xz => Box::new(liblzma::bufread::XzDecoder::new_multi_decoder(input)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(input)?),
    })
}

/// `read`, retried when interrupted.
fn read_once(reader: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match reader.read(buf) {
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            other => return other,
        }
    }
}

/// The reason text of an I/O error, on one line.
pub fn one_line(err: &io::Error) -> String {
    let text = err.to_string();
    let words: Vec<&str> = text.split_whitespace().collect();
    if words.is_empty() {
        format!("{:?}", err.kind())
    } else {
        words.join(" ")
    }
}

enum Mode {
    /// An uncompressed file, `[pos, end)`; `limit_reached`: `end` is the read limit, not the file's end.
    Plain {
        file: File,
        pos: u64,
        end: Option<u64>,
        limit_reached: bool,
    },
    /// An uncompressed member, held to the caps of a compressed one.
    Capped {
        reader: Box<dyn Read + Send>,
        cap: u64,
        cap_reason: &'static str,
    },
    /// Decompressed bytes.
    Inflate {
        reader: Box<dyn Read + Send>,
        cap: u64,
        cap_reason: &'static str,
        step: usize,
    },
    Done,
}

/// Asks an archive member's stream why its container stopped it early, at the end of its bytes.
pub type StoppedHook = Box<dyn FnMut() -> Option<String> + Send>;

/// A source's bytes, step by step (see the module documentation).
pub struct Steps {
    mode: Mode,
    limits: Limits,
    pub compression: Option<Compression>,
    pub stop_reason: Option<String>,
    bytes_in: u64,
    pub bytes_out: u64,
    compressed_in: Arc<AtomicU64>,
    stopped: Option<StoppedHook>,
    /// The buffer of a step already split, read into again.
    spare: Vec<u8>,
}

impl Steps {
    fn done(limits: Limits) -> Self {
        Self {
            mode: Mode::Done,
            limits,
            compression: None,
            stop_reason: None,
            bytes_in: 0,
            bytes_out: 0,
            compressed_in: Arc::new(AtomicU64::new(0)),
            stopped: None,
            spare: Vec::new(),
        }
    }

    /// A regular file (already opened and checked), or the byte range `[start, end)` of an
    /// uncompressed one. Err(message) when a byte range is asked of a compressed file.
    pub fn file(
        mut file: File,
        byte_range: Option<(u64, u64)>,
        limits: Limits,
    ) -> Result<Self, String> {
        let mut steps = Self::done(limits);
        let head = file.metadata().map(|meta| meta.len()).and_then(|size| {
            let mut magic = Vec::with_capacity(6);
            file.seek(SeekFrom::Start(0))?;
            (&mut file).take(6).read_to_end(&mut magic)?;
            Ok((size, magic))
        });
        let (size, magic) = match head {
            Ok(head) => head,
            Err(err) => {
                steps.stop_reason = Some(format!("read_error: {}", one_line(&err)));
                return Ok(steps);
            }
        };
        steps.compression = compression_of(&magic);
        match steps.compression {
            None => {
                let (start, mut end) = match byte_range {
                    Some((start, end)) => (start, Some(end)),
                    None => (0, None),
                };
                let mut limit_reached = false;
                if let Some(limit) = limits.read_limit {
                    if end.is_none_or(|end| end.saturating_sub(start) > limit) {
                        end = Some(start.saturating_add(limit));
                        limit_reached = true;
                    }
                }
                if let Err(err) = file.seek(SeekFrom::Start(start)) {
                    steps.stop_reason = Some(format!("read_error: {}", one_line(&err)));
                    return Ok(steps);
                }
                steps.mode = Mode::Plain {
                    file,
                    pos: start,
                    end,
                    limit_reached,
                };
            }
            Some(compression) => {
                if byte_range.is_some_and(|(start, end)| start != 0 || end < size) {
                    return Err("byte ranges apply to uncompressed files only; read a compressed file whole".to_owned());
                }
                if let Err(err) = file.seek(SeekFrom::Start(0)) {
                    steps.stop_reason = Some(format!("read_error: {}", one_line(&err)));
                    return Ok(steps);
                }
                steps.inflate(compression, Box::new(file), size);
            }
        }
        Ok(steps)
    }

    /// An archive member's bytes, read through `stream`; `stored` is the size it takes in its container.
    pub fn stream(
        mut stream: Box<dyn Read + Send>,
        stored: u64,
        limits: Limits,
        stopped: StoppedHook,
    ) -> Self {
        let mut steps = Self::done(limits);
        let mut head = Vec::with_capacity(6);
        while head.len() < 6 {
            let mut buf = [0u8; 6];
            match read_once(stream.as_mut(), &mut buf[..6 - head.len()]) {
                Ok(0) => break,
                Ok(n) => head.extend_from_slice(&buf[..n]),
                Err(err) => {
                    steps.stop_reason = Some(format!("read_error: {}", one_line(&err)));
                    return steps;
                }
            }
        }
        steps.stopped = Some(stopped);
        steps.compression = compression_of(&head);
        let prefixed = Box::new(Prefixed {
            head,
            at: 0,
            inner: stream,
        });
        match steps.compression {
            Some(compression) => steps.inflate(compression, prefixed, stored),
            None => {
                let (cap, cap_reason) = limits.cap(stored);
                steps.mode = Mode::Capped {
                    reader: prefixed,
                    cap,
                    cap_reason,
                };
            }
        }
        steps
    }

    fn inflate(&mut self, compression: Compression, input: Box<dyn Read + Send>, stored: u64) {
        let counted = Box::new(Counting {
            inner: input,
            count: Arc::clone(&self.compressed_in),
        });
        let (cap, cap_reason) = self.limits.cap(stored);
        match decompressor(compression, counted) {
            Ok(reader) => {
                let step = usize::try_from(cap.saturating_add(1))
                    .unwrap_or(usize::MAX)
                    .min(self.limits.read_size);
                self.mode = Mode::Inflate {
                    reader,
                    cap,
                    cap_reason,
                    step,
                };
            }
            Err(err) => self.stop_reason = Some(format!("read_error: {}", one_line(&err))),
        }
    }

    /// Hand back a step's buffer once its bytes are used, to read the next step into.
    pub fn recycle(&mut self, step: Vec<u8>) {
        if step.capacity() > self.spare.capacity() {
            self.spare = step;
        }
    }

    /// Bytes read from the source (compressed bytes for a compressed source).
    pub fn bytes_in(&self) -> u64 {
        if self.compression.is_some() {
            self.compressed_in.load(Ordering::Relaxed)
        } else {
            self.bytes_in
        }
    }

    fn fail(&mut self, err: &io::Error, truncation_is_eof: bool) {
        self.stop_reason = Some(
            if truncation_is_eof && err.kind() == io::ErrorKind::UnexpectedEof {
                STOP_TRUNCATED_ARCHIVE.to_owned()
            } else {
                format!("read_error: {}", one_line(err))
            },
        );
    }

    /// Called once at the end: a member's container may have stopped it (its cap, its damage).
    fn end(&mut self) {
        self.mode = Mode::Done;
        if let Some(mut hook) = self.stopped.take() {
            if let Some(reason) = hook() {
                if self.stop_reason.as_deref() != Some(STOP_READ_LIMIT) {
                    self.stop_reason = Some(reason);
                }
            }
        }
    }

    /// The next step of bytes (never empty); None at the end.
    pub fn next_step(&mut self) -> Option<Vec<u8>> {
        let read_size = self.limits.read_size.max(1);
        match &mut self.mode {
            Mode::Done => None,
            Mode::Plain {
                file,
                pos,
                end,
                limit_reached,
            } => {
                let want = match *end {
                    Some(end) if *pos >= end => {
                        if *limit_reached {
                            self.stop_reason = Some(STOP_READ_LIMIT.to_owned());
                        }
                        self.mode = Mode::Done;
                        return None;
                    }
                    Some(end) => usize::try_from(end - *pos)
                        .unwrap_or(usize::MAX)
                        .min(read_size),
                    None => read_size,
                };
                // A recycled buffer keeps its length: no page faults, no zero fill for each step.
                let mut buf = std::mem::take(&mut self.spare);
                buf.resize(want, 0);
                match read_once(file, &mut buf) {
                    Ok(0) => {
                        self.mode = Mode::Done;
                        None
                    }
                    Ok(n) => {
                        buf.truncate(n);
                        *pos += n as u64;
                        self.bytes_in += n as u64;
                        self.bytes_out += n as u64;
                        Some(buf)
                    }
                    Err(err) => {
                        self.fail(&err, false);
                        self.mode = Mode::Done;
                        None
                    }
                }
            }
            Mode::Capped {
                reader,
                cap,
                cap_reason,
            } => {
                let want = usize::try_from(cap.saturating_add(1) - self.bytes_out)
                    .unwrap_or(usize::MAX)
                    .min(read_size);
                let mut buf = vec![0u8; want];
                match read_once(reader.as_mut(), &mut buf) {
                    Ok(0) => {
                        self.end();
                        None
                    }
                    Ok(mut n) => {
                        let mut stop = false;
                        if self.bytes_out + n as u64 > *cap {
                            n = usize::try_from(*cap - self.bytes_out).unwrap_or(0);
                            self.stop_reason = Some((*cap_reason).to_owned());
                            stop = true;
                        }
                        buf.truncate(n);
                        self.bytes_out += n as u64;
                        self.bytes_in = self.bytes_out;
                        if stop {
                            self.end();
                        }
                        (n > 0).then_some(buf)
                    }
                    Err(err) => {
                        self.fail(&err, false);
                        self.end();
                        None
                    }
                }
            }
            Mode::Inflate {
                reader,
                cap,
                cap_reason,
                step,
            } => {
                let (cap, cap_reason, step) = (*cap, *cap_reason, *step);
                let mut pending: Vec<u8> = Vec::new();
                let mut finished = false;
                // Gather at least half a step: a decompressor hands out small pieces.
                while pending.len() < step / 2 || pending.is_empty() {
                    let want = usize::try_from(cap.saturating_add(1) - self.bytes_out)
                        .unwrap_or(usize::MAX)
                        .min(step);
                    let start = pending.len();
                    pending.resize(start + want, 0);
                    let read = read_once(reader.as_mut(), &mut pending[start..]);
                    match read {
                        Ok(0) => {
                            pending.truncate(start);
                            finished = true;
                            break;
                        }
                        Ok(mut n) => {
                            let over = self.bytes_out + n as u64 > cap;
                            if over {
                                n = usize::try_from(cap - self.bytes_out).unwrap_or(0);
                                self.stop_reason = Some(cap_reason.to_owned());
                            }
                            pending.truncate(start + n);
                            self.bytes_out += n as u64;
                            if over {
                                finished = true;
                                break;
                            }
                        }
                        Err(err) => {
                            pending.truncate(start);
                            self.fail(&err, true);
                            finished = true;
                            break;
                        }
                    }
                }
                if finished {
                    self.end();
                }
                (!pending.is_empty()).then_some(pending)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn limits() -> Limits {
        Limits {
            read_size: 16 << 20,
            max_decompressed_bytes: 64 << 30,
            max_compression_ratio: 200,
            read_limit: None,
        }
    }

    fn all(mut steps: Steps) -> (Vec<u8>, Option<String>) {
        let mut out = Vec::new();
        while let Some(step) = steps.next_step() {
            assert!(!step.is_empty());
            out.extend(step);
        }
        (out, steps.stop_reason)
    }

    fn member(data: &[u8]) -> Steps {
        Steps::stream(
            Box::new(io::Cursor::new(data.to_vec())),
            data.len() as u64,
            limits(),
            Box::new(|| None),
        )
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(data).expect("in memory");
        encoder.finish().expect("in memory")
    }

    fn compressed(kind: Compression, data: &[u8]) -> Vec<u8> {
        match kind {
            Compression::Gzip => gzip(data),
            Compression::Bz2 => {
                let mut encoder =
                    bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::default());
                encoder.write_all(data).expect("in memory");
                encoder.finish().expect("in memory")
            }
            Compression::Xz => {
                let mut encoder = liblzma::write::XzEncoder::new(Vec::new(), 6);
                encoder.write_all(data).expect("in memory");
                encoder.finish().expect("in memory")
            }
            Compression::Zstd => zstd::stream::encode_all(data, 3).expect("in memory"),
        }
    }

    #[test]
    fn every_member_or_frame_is_read() {
        let text: Vec<u8> = (0..2000)
            .flat_map(|i| format!("line {i}\n").into_bytes())
            .collect();
        for kind in [
            Compression::Gzip,
            Compression::Bz2,
            Compression::Xz,
            Compression::Zstd,
        ] {
            let mut data = compressed(kind, &text[..5000]);
            if kind == Compression::Gzip {
                data.extend_from_slice(&[0, 0, 0]);
            }
            data.extend(compressed(kind, &text[5000..]));
            let (out, stop) = all(member(&data));
            assert_eq!(stop, None, "{kind:?}");
            assert_eq!(out, text, "{kind:?}");
        }
    }

    #[test]
    fn truncated_archives_keep_what_was_decompressed() {
        let text: Vec<u8> = (0..20000)
            .flat_map(|i| format!("line {i} {}\n", i * 7919 % 1000).into_bytes())
            .collect();
        for kind in [
            Compression::Gzip,
            Compression::Bz2,
            Compression::Xz,
            Compression::Zstd,
        ] {
            let data = compressed(kind, &text);
            for cut in [data.len() - 1, data.len() / 2, 7] {
                let (out, stop) = all(member(&data[..cut]));
                assert_eq!(
                    stop.as_deref(),
                    Some(STOP_TRUNCATED_ARCHIVE),
                    "{kind:?} cut at {cut}"
                );
                assert!(text.starts_with(&out), "{kind:?}");
            }
        }
    }

    #[test]
    fn corrupt_streams_are_read_errors() {
        let mut data = gzip(b"hello\n");
        data[12] ^= 0xff;
        let (_, stop) = all(member(&data));
        assert!(stop.is_some_and(|stop| stop.starts_with("read_error: ")));
    }

    #[test]
    fn the_size_cap_stops_decompression() {
        let text = vec![b'a'; (RATIO_CAP_FLOOR + 10) as usize];
        let data = gzip(&text);
        let (out, stop) = all(member(&data));
        assert_eq!(stop.as_deref(), Some(STOP_SIZE_CAP));
        assert_eq!(out.len() as u64, RATIO_CAP_FLOOR);
    }
}
