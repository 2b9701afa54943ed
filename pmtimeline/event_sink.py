"""Write the event table chunk by chunk, so that memory does not grow with the number of events.

:class:`EventSink` is the ``on_chunk`` callback of :func:`pmtimeline.pipeline.build` and
:func:`pmtimeline.pipeline.ingest`: every chunk is written as it comes and then dropped.

* **Parquet** goes through one :class:`pyarrow.parquet.ParquetWriter` with the schema of
  :func:`~pmtimeline.schema.empty_events` and the encoding options of
  :func:`~pmtimeline.export.parquet_options` (zstd), one row group per chunk, so the file reads back
  with the same columns and dtypes as :func:`~pmtimeline.export.export_events` writes.
* **CSV, JSON lines and the Timesketch formats** are :func:`~pmtimeline.export.export_events` of each
  chunk, appended (a CSV header only once).

**Order.** Rows come in the order of the chunks: source by source (in the order of the inputs), and
within a source in file order. Each chunk is sorted by time (stable, so equal times keep their line
order), which for ordinary log files, written in time order, leaves the rows of a source in time
order. A global time order across sources would need an external merge sort (another full pass over
the data on disk); the sink does not do it: sort on read when you need it (``pd.read_parquet(p)
.sort_values(["timestamp", "source", "line"])``, DuckDB ``ORDER BY timestamp``), or keep the events in
memory (``pipeline.ingest(..., keep_events=True)``), which sorts them globally.

The file is written into a temporary folder beside the target (an
:class:`~pmtimeline.output_files.OutputTransaction`) and moved into place by :meth:`EventSink.close`,
so a failed run never leaves a half-written table behind (:meth:`EventSink.abort` removes it), and a
symbolic link at the target is replaced, never written through. The file has mode 0600 (it may hold
the lines as logged). Pass the transaction of a whole run as ``outputs`` to move the table into
place with the run's other files instead.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from types import TracebackType
from typing import IO

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from pmtimeline.errors import OutputError
from pmtimeline.export import EXPORT_FORMATS, export_events, parquet_options
from pmtimeline.output_files import OutputTransaction, output_error
from pmtimeline.redact import Redactor
from pmtimeline.schema import EVENT_COLUMNS, empty_events

__all__ = ["EventSink", "sort_chunk"]


def sort_chunk(chunk: pd.DataFrame) -> pd.DataFrame:
    """``chunk`` in time order (stable: equal times keep their order); unchanged when already sorted.

    Null timestamps go last. Checking first is cheap, and log files are almost always in order, so
    the (costly, for Arrow strings) row permutation is rarely needed.
    """
    if len(chunk) < 2:
        return chunk
    ts = chunk["timestamp"]
    values = ts.to_numpy(dtype="datetime64[ns]", na_value=np.datetime64("NaT")).view(np.int64)
    nulls = ts.isna().to_numpy()
    keys = np.where(nulls, np.iinfo(np.int64).max, values)
    if bool((np.diff(keys) >= 0).all()):
        return chunk
    order = np.argsort(keys, kind="stable")
    return chunk.take(order).reset_index(drop=True)


class EventSink:
    """Append event chunks to one output file (``.parquet``, ``.csv``, ``.jsonl``, Timesketch).

    Args:
        path: the output file.
        fmt: one of :data:`pmtimeline.export.EXPORT_FORMATS`.
        redactor: when given, every chunk is redacted with it before writing (use the same
            instance for every output of one report, so pseudonyms agree).
        sort_chunks: sort each chunk by time before writing (see the module docstring).
        outputs: the run's :class:`~pmtimeline.output_files.OutputTransaction`: the table is staged
            in it and moves into place when the caller commits it (:meth:`close` then only
            finishes the file). Without it, :meth:`close` moves the table into place itself.

    Use as the ``on_chunk`` callback, then :meth:`close` (or as a context manager, which aborts on an
    exception)::

        with EventSink("events.parquet", "parquet") as sink:
            result = pipeline.build(sources, config, keep_events=False, on_chunk=sink)

    Raises:
        ConfigError: unknown format (from :func:`~pmtimeline.export.export_events`).
        OutputError: the file cannot be written.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        fmt: str,
        *,
        redactor: Redactor | None = None,
        sort_chunks: bool = True,
        outputs: OutputTransaction | None = None,
    ) -> None:
        if fmt not in EXPORT_FORMATS:
            export_events(empty_events(), fmt)  # raises the ConfigError that names the formats
        self.path = Path(path)
        self.fmt = fmt
        self.rows = 0
        self._redactor = redactor
        self._sort = sort_chunks
        self._header_written = False
        self._parquet: pq.ParquetWriter | None = None
        self._schema = pa.Schema.from_pandas(empty_events(), preserve_index=False)
        self._own_outputs = outputs is None
        self._outputs = OutputTransaction() if outputs is None else outputs
        try:
            # 0600: the table may hold the lines as logged (ingest's Parquet, --keep-raw).
            self._file: IO[bytes] | None = self._outputs.open(self.path, mode=0o600)
        except OutputError:
            if self._own_outputs:
                self._outputs.abort()
            raise
        if fmt == "parquet":
            try:
                self._parquet = pq.ParquetWriter(self._file, self._schema, **parquet_options(self._schema))
            except (pa.ArrowException, OSError) as exc:
                self.abort()
                raise OutputError(f"cannot write {self.path}: {exc}") from exc

    def __call__(self, chunk: pd.DataFrame) -> None:
        self.write(chunk)

    def write(self, chunk: pd.DataFrame) -> None:
        """Append one chunk of events (event schema columns; extra columns are not written)."""
        if self._file is None:
            raise OutputError(f"{self.path}: the event sink is closed")
        if chunk.empty:
            return
        frame = chunk[list(EVENT_COLUMNS)]
        if self._sort:
            frame = sort_chunk(frame)
        if self._redactor is not None:
            frame = self._redactor.redact_events(frame)
        try:
            if self._parquet is not None:
                table = pa.Table.from_pandas(frame, schema=self._schema, preserve_index=False)
                self._parquet.write_table(table)
            else:
                self._file.write(self._text(frame))
        except OSError as exc:  # first: Arrow's I/O errors are OSErrors too (a full disk)
            self.abort()
            raise output_error(self.path, exc) from exc
        except (pa.ArrowException, ValueError, TypeError) as exc:
            self.abort()
            raise OutputError(f"cannot write the events to {self.path}: {exc}") from exc
        self.rows += len(frame)

    def _text(self, frame: pd.DataFrame) -> bytes:
        data = export_events(frame, self.fmt)
        if self.fmt.endswith("csv"):
            if self._header_written:
                # The header is the first CRLF-terminated record; column names hold no line breaks.
                data = data[data.index(b"\r\n") + 2 :]
            self._header_written = True
        return data

    def close(self) -> Path:
        """Finish the file and move it into place (or leave that to the ``outputs`` given); returns
        its path. Closing twice is harmless."""
        if self._file is None:
            return self.path
        try:
            if self._parquet is not None:
                self._parquet.close()
            elif self.fmt.endswith("csv") and not self._header_written:
                self._file.write(export_events(empty_events(), self.fmt))
            self._file.close()
            self._file = None
        except OSError as exc:
            self.abort()
            raise output_error(self.path, exc) from exc
        except pa.ArrowException as exc:
            self.abort()
            raise OutputError(f"cannot write {self.path}: {exc}") from exc
        if self._own_outputs:
            self._outputs.commit()
        return self.path

    def abort(self) -> None:
        """Stop writing and remove the partial file (the target is left as it was)."""
        file, self._file = self._file, None
        if file is not None:
            try:
                if self._parquet is not None:
                    self._parquet.close()
            except (OSError, pa.ArrowException):
                pass  # the partial file is removed below anyway
            finally:
                self._parquet = None
                # A full disk can fail the final flush; the file is discarded anyway.
                with contextlib.suppress(OSError):
                    file.close()
        if self._own_outputs:
            self._outputs.abort()
        else:
            self._outputs.discard(self.path)

    def __enter__(self) -> EventSink:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if kind is None:
            self.close()
        else:
            self.abort()
