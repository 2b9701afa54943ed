//! `LineBlocks`: a source's numbered, decoded lines, handed to Python block by block as Arrow batches.
//!
//! The pipeline is [`open::Steps`] (bytes, decompressed and capped) → the byte-order-mark / UTF-16 /
//! UTF-32 layer ([`lines::Encoding`], [`lines::WideDecoder`]) → [`lines::Splitter`]. One read step's
//! lines are in flight at a time; each `__next__` hands out at most `chunk_lines` of them, with the GIL
//! released while reading and decoding.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{FromRawFd, RawFd};
use std::sync::{Arc, Mutex, MutexGuard};

use arrow_array::RecordBatch;
use arrow_schema::{DataType, Field, Schema};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::arrow_out::ArrowBatch;
use crate::guard;
use crate::lines::{DecodedLines, Encoding, Splitter, WideDecoder};
use crate::open::{Limits, Steps};

/// One block on its way out: first line number, batch (`line`, `io_reject`), truncated, decode errors.
type Block = (u64, RecordBatch, u64, u64);

struct Current {
    batch: RecordBatch,
    truncated: Vec<bool>,
    decode_errors: Vec<u32>,
    cursor: usize,
}

struct Reader {
    steps: Steps,
    detect_bom: bool,
    bom_done: bool,
    encoding: Encoding,
    wide: Option<WideDecoder>,
    /// Replacements made while transcoding UTF-16/32, counted in the next block handed out.
    pending_wide_errors: u64,
    splitter: Splitter,
    chunk_lines: usize,
    next_line: u64,
    current: Option<Current>,
    finished: bool,
}

impl Reader {
    fn new(
        steps: Steps,
        detect_bom: bool,
        chunk_lines: usize,
        max_line_bytes: usize,
        first_line: u64,
    ) -> Self {
        Self {
            steps,
            detect_bom,
            bom_done: false,
            encoding: Encoding::Utf8,
            wide: None,
            pending_wide_errors: 0,
            splitter: Splitter::new(max_line_bytes),
            chunk_lines: chunk_lines.max(1),
            next_line: first_line,
            current: None,
            finished: false,
        }
    }

    /// The next step of UTF-8 bytes (a byte order mark removed, UTF-16/32 transcoded).
    fn next_text(&mut self) -> Option<Vec<u8>> {
        if !self.bom_done {
            self.bom_done = true;
            if self.detect_bom {
                let mut first = Vec::new();
                while first.len() < 4 {
                    match self.steps.next_step() {
                        Some(step) => first.extend(step),
                        None => break,
                    }
                }
                let (encoding, mark) = Encoding::from_bom(&first);
                self.encoding = encoding;
                if encoding == Encoding::Utf8 {
                    if first.len() > mark {
                        first.drain(..mark);
                        return Some(first);
                    }
                } else {
                    self.wide = Some(WideDecoder::new(encoding, &first[mark..]));
                }
            }
        }
        let Some(wide) = self.wide.as_mut() else {
            return self.steps.next_step();
        };
        loop {
            let decoded = match self.steps.next_step() {
                Some(step) => match wide.push(&step) {
                    Some(decoded) => decoded,
                    None => continue,
                },
                None => wide.finish()?,
            };
            self.pending_wide_errors += u64::from(decoded.1);
            return Some(decoded.0);
        }
    }

    fn load(&mut self, mut lines: DecodedLines) -> Result<(), String> {
        if lines.is_empty() {
            return Ok(());
        }
        let text = lines.take_text().map_err(|err| err.to_string())?;
        let rejects = lines.take_rejects();
        let schema = Schema::new(vec![
            Field::new("line", DataType::LargeUtf8, false),
            Field::new("io_reject", DataType::LargeUtf8, true),
        ]);
        let batch = RecordBatch::try_new(Arc::new(schema), vec![text, rejects])
            .map_err(|err| err.to_string())?;
        self.current = Some(Current {
            batch,
            truncated: std::mem::take(&mut lines.truncated),
            decode_errors: std::mem::take(&mut lines.decode_errors),
            cursor: 0,
        });
        Ok(())
    }

    fn take_block(&mut self) -> Option<Block> {
        let current = self.current.as_mut()?;
        let total = current.truncated.len();
        if current.cursor >= total {
            self.current = None;
            return None;
        }
        let start = current.cursor;
        let count = self.chunk_lines.min(total - start);
        current.cursor += count;
        let truncated = current.truncated[start..start + count]
            .iter()
            .filter(|&&cut| cut)
            .count() as u64;
        let errors: u64 = current.decode_errors[start..start + count]
            .iter()
            .map(|&n| u64::from(n))
            .sum::<u64>()
            + std::mem::take(&mut self.pending_wide_errors);
        let batch = current.batch.slice(start, count);
        let first = self.next_line;
        self.next_line += count as u64;
        Some((first, batch, truncated, errors))
    }

    fn next_block(&mut self) -> Result<Option<Block>, String> {
        loop {
            if let Some(block) = self.take_block() {
                return Ok(Some(block));
            }
            if self.finished {
                return Ok(None);
            }
            let mut lines = DecodedLines::new();
            match self.next_text() {
                Some(step) => {
                    self.splitter.push(&step, &mut lines);
                    self.steps.recycle(step);
                }
                None => {
                    let tail = self.steps.stop_reason.as_deref().map(|reason| {
                        if reason.starts_with("read_error") {
                            "read_error"
                        } else {
                            reason
                        }
                    });
                    self.splitter.finish(tail, &mut lines);
                    self.finished = true;
                }
            }
            self.load(lines)?;
        }
    }
}

/// A Python stream (`read(size) -> bytes`) as a [`Read`]; the GIL is taken for each read.
struct PyStream {
    stream: Py<PyAny>,
    /// Bytes a read returned beyond the size asked (a stream should not, but nothing is lost if it does).
    extra: Vec<u8>,
}

impl Read for PyStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if !self.extra.is_empty() {
            let n = self.extra.len().min(buf.len());
            buf[..n].copy_from_slice(&self.extra[..n]);
            self.extra.drain(..n);
            return Ok(n);
        }
        Python::attach(|py| {
            let data = self
                .stream
                .call_method1(py, "read", (buf.len(),))
                .map_err(|err| io::Error::other(python_reason(py, &err)))?;
            let data = data
                .bind(py)
                .cast::<PyBytes>()
                .map_err(|err| io::Error::other(err.to_string()))?
                .as_bytes();
            let n = data.len().min(buf.len());
            buf[..n].copy_from_slice(&data[..n]);
            self.extra.extend_from_slice(&data[n..]);
            Ok(n)
        })
    }
}

fn python_reason(py: Python<'_>, err: &PyErr) -> String {
    let text = err
        .value(py)
        .str()
        .map(|s| s.to_string())
        .unwrap_or_default();
    if text.trim().is_empty() {
        err.get_type(py)
            .name()
            .map(|name| name.to_string())
            .unwrap_or_else(|_| "error".to_owned())
    } else {
        text
    }
}

/// A source's lines, block by block: iterate for `(first_line, batch, truncated_lines, decode_errors)`,
/// `batch` holding the columns `line` and `io_reject` (both `large_string`).
#[pyclass(module = "pmtimeline._core")]
pub struct LineBlocks {
    source: String,
    // A Mutex only to make the class Sync: Python calls it from one thread at a time.
    reader: Mutex<Reader>,
}

fn limits(
    read_size: usize,
    max_decompressed_bytes: u64,
    max_compression_ratio: u64,
    read_limit: Option<u64>,
) -> Limits {
    Limits {
        read_size: read_size.max(1),
        max_decompressed_bytes,
        max_compression_ratio,
        read_limit,
    }
}

impl LineBlocks {
    fn lock(&self) -> MutexGuard<'_, Reader> {
        // A panic while reading poisons the lock; the reader's state is still whole enough to report.
        self.reader
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[pymethods]
impl LineBlocks {
    /// The lines of a regular file. `fd` is an open, checked file descriptor handed over to the reader
    /// (it closes it). `byte_range`: `(start, end, first_line)` of an uncompressed file.
    #[staticmethod]
    #[pyo3(signature = (fd, source, chunk_lines, max_line_bytes, max_decompressed_bytes, max_compression_ratio, read_size, byte_range=None, read_limit=None))]
    #[allow(clippy::too_many_arguments)]
    fn open(
        py: Python<'_>,
        fd: RawFd,
        source: String,
        chunk_lines: usize,
        max_line_bytes: usize,
        max_decompressed_bytes: u64,
        max_compression_ratio: u64,
        read_size: usize,
        byte_range: Option<(u64, u64, u64)>,
        read_limit: Option<u64>,
    ) -> PyResult<Self> {
        // SAFETY: the caller hands over an open descriptor it no longer uses (see rawio.LineReader);
        // from here the File owns it and closes it once.
        let file = unsafe { File::from_raw_fd(fd) };
        guard::guarded(py, &source.clone(), || {
            let limits = limits(
                read_size,
                max_decompressed_bytes,
                max_compression_ratio,
                read_limit,
            );
            let steps = py
                .detach(|| Steps::file(file, byte_range.map(|(s, e, _)| (s, e)), limits))
                .map_err(PyValueError::new_err)?;
            let detect_bom = byte_range.is_none_or(|(start, _, _)| start == 0);
            let first_line = byte_range.map_or(1, |(_, _, first)| first);
            Ok(Self {
                reader: Mutex::new(Reader::new(
                    steps,
                    detect_bom,
                    chunk_lines,
                    max_line_bytes,
                    first_line,
                )),
                source,
            })
        })
    }

    /// The lines of a stream (an archive member): `stream.read(size)` gives its bytes as stored (a
    /// compressed member is decompressed here); `stream.stopped` is read at its end.
    #[staticmethod]
    #[pyo3(signature = (stream, stored_size, source, chunk_lines, max_line_bytes, max_decompressed_bytes, max_compression_ratio, read_size, read_limit=None))]
    #[allow(clippy::too_many_arguments)]
    fn from_stream(
        py: Python<'_>,
        stream: Py<PyAny>,
        stored_size: u64,
        source: String,
        chunk_lines: usize,
        max_line_bytes: usize,
        max_decompressed_bytes: u64,
        max_compression_ratio: u64,
        read_size: usize,
        read_limit: Option<u64>,
    ) -> PyResult<Self> {
        guard::guarded(py, &source.clone(), || {
            let limits = limits(
                read_size,
                max_decompressed_bytes,
                max_compression_ratio,
                read_limit,
            );
            let probe = stream.clone_ref(py);
            let stopped = Box::new(move || {
                Python::attach(|py| {
                    probe
                        .getattr(py, "stopped")
                        .and_then(|value| value.extract::<Option<String>>(py))
                        .ok()
                        .flatten()
                })
            });
            let reader = Box::new(PyStream {
                stream,
                extra: Vec::new(),
            });
            let steps = py.detach(|| Steps::stream(reader, stored_size, limits, stopped));
            Ok(Self {
                reader: Mutex::new(Reader::new(steps, true, chunk_lines, max_line_bytes, 1)),
                source,
            })
        })
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__(&mut self, py: Python<'_>) -> PyResult<Option<(u64, ArrowBatch, u64, u64)>> {
        let source = self.source.clone();
        let mut locked = self.lock();
        let reader: &mut Reader = &mut locked;
        guard::guarded(py, &source, || {
            let block = py
                .detach(|| reader.next_block())
                .map_err(|detail| guard::core_fault(py, &source, &detail))?;
            Ok(block.map(|(first, batch, truncated, errors)| {
                (first, ArrowBatch::new(batch), truncated, errors)
            }))
        })
    }

    /// "gzip", "bz2", "xz", "zstd" or None, from the magic bytes.
    #[getter]
    fn compression(&self) -> Option<&'static str> {
        self.lock().steps.compression.map(|c| c.name())
    }

    /// "utf-8", "utf-16-le", "utf-16-be", "utf-32-le" or "utf-32-be".
    #[getter]
    fn encoding(&self) -> &'static str {
        self.lock().encoding.name()
    }

    /// None, or why reading stopped early.
    #[getter]
    fn stop_reason(&self) -> Option<String> {
        self.lock().steps.stop_reason.clone()
    }

    /// Bytes read from the source.
    #[getter]
    fn bytes_in(&self) -> u64 {
        self.lock().steps.bytes_in()
    }

    /// Bytes produced by decompression (all bytes read, for an uncompressed source).
    #[getter]
    fn bytes_out(&self) -> u64 {
        self.lock().steps.bytes_out
    }
}
