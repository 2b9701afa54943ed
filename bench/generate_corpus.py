"""Generate the benchmark corpus: a mixed multi-format log window with an embedded incident.

Five files of roughly equal line counts (multi-line stack traces count as lines):

==================  ======================================================  ==========================
file                format                                                  time stamps
==================  ======================================================  ==========================
access.log          nginx combined + request time                           ``+0100`` offsets
app.jsonl           ECS JSON lines (``@timestamp``, ``log.level``, ...)      UTC ``Z``
syslog              RFC 3164 syslog, several hosts                          no year, naive UTC
worker.log          Python logging, tracebacks on errors                    naive UTC
service.log         log4j (``%d %-5p [%t] %c - %m``), Java stack traces     naive UTC
==================  ======================================================  ==========================

The window is two hours (2024-03-12 08:00-10:00 UTC). From 08:50 to 09:20 every source shows an
error burst (about a quarter of the events are errors instead of a few per thousand; syslog has no
levels, so there the burst is in the messages), preceded by a
deploy of ``checkout-api`` and ended by its rollback, so ``pmtimeline build`` has an incident to
find. ``.manifest.json`` records the files, their line and byte counts and the incident's window
(hidden, so that ``pmtimeline`` and the benchmark script do not read it as a log).

Lines are built column-wise with Arrow compute kernels (take from small vocabularies, vectorized
joins) and streamed to disk in chunks, so memory stays bounded and 20 M lines take minutes::

    python bench/generate_corpus.py --lines 2000000 --out bench/corpus
    python bench/generate_corpus.py --lines 20000000 --out bench/corpus20m --workers 2

The output is deterministic for a given ``--lines``, ``--seed`` and ``--chunk-lines``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

DEFAULT_LINES: Final = 2_000_000
DEFAULT_CHUNK_LINES: Final = 100_000
MANIFEST: Final = ".manifest.json"
SEED: Final = 1312

WINDOW_START: Final = dt.datetime(2024, 3, 12, 8, 0, tzinfo=dt.UTC)
WINDOW_SECONDS: Final = 2 * 3600
INCIDENT_START_S: Final = 50 * 60  # 08:50 UTC
INCIDENT_END_S: Final = 80 * 60  # 09:20 UTC
DEPLOY_S: Final = INCIDENT_START_S - 90  # checkout-api v3.2.0
ROLLBACK_S: Final = INCIDENT_END_S - 150  # back to v3.1.9
ACCESS_OFFSET: Final = dt.timezone(dt.timedelta(hours=1))

BASE_ERROR: Final = 0.002
INCIDENT_ERROR: Final = 0.25
WARNING: Final = 0.02

Int64Array = npt.NDArray[np.int64]
Int8Array = npt.NDArray[np.int8]
BoolArray = npt.NDArray[np.bool_]

INFO, WARN, ERROR = 0, 1, 2


# --------------------------------------------------------------------------------------------------
# Vectorized string building


def strings(values: Sequence[str]) -> pa.Array:
    return pa.array(list(values), type=pa.string())


def take(vocab: pa.Array, index: npt.NDArray[Any]) -> pa.Array:
    return pc.take(vocab, pa.array(index.astype(np.int32, copy=False)))


def numbers(values: npt.NDArray[Any]) -> pa.Array:
    return pc.cast(pa.array(values), pa.string())


def join(*parts: pa.Array | str) -> pa.Array:
    """Element-wise concatenation of arrays and constant strings."""
    return pc.binary_join_element_wise(*parts, "")


_HEX: Final = np.frombuffer(b"".join(f"{i:02x}".encode() for i in range(256)), dtype=np.uint8).reshape(256, 2)


def hex_ids(rng: np.random.Generator, n: int, digits: int) -> pa.Array:
    """``n`` random lower-case hex strings of ``digits`` characters (an even number), without a Python loop."""
    raw = rng.integers(0, 256, size=(n, digits // 2), dtype=np.uint8)
    chars = np.ascontiguousarray(_HEX[raw].reshape(n, digits))
    offsets = np.arange(0, digits * (n + 1), digits, dtype=np.int32)
    return pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(chars)])


def array_bytes(array: pa.Array) -> memoryview:
    """The concatenated UTF-8 bytes of a string array (its data buffer), without copying."""
    array = array.cast(pa.string()) if array.type != pa.string() else array
    offsets = np.frombuffer(array.buffers()[1], dtype=np.int32, count=len(array) + 1, offset=array.offset * 4)
    data = array.buffers()[2]
    return memoryview(data)[int(offsets[0]) : int(offsets[-1])]


def second_table(render: Callable[[dt.datetime], str]) -> pa.Array:
    """The rendered time stamp of every second of the window (index = seconds since the start)."""
    return strings([render(WINDOW_START + dt.timedelta(seconds=s)) for s in range(WINDOW_SECONDS + 1)])


MILLIS: Final = strings([f"{i:03d}" for i in range(1000)])


# --------------------------------------------------------------------------------------------------
# Vocabularies

USER_AGENTS: Final = strings(
    [
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_3 like Mac OS X)",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/122.0",
        "Mozilla/5.0 (X11; Linux x86_64) Firefox/123.0",
        "okhttp/4.12.0",
        "curl/8.5.0",
    ]
)
REQUESTS: Final = (
    ("GET /api/v1/products/", " HTTP/1.1", 30),
    ("GET /api/v1/cart/", " HTTP/1.1", 20),
    ("POST /api/v1/checkout/", " HTTP/1.1", 10),
    ("GET /static/img/p", ".webp HTTP/1.1", 25),
    ("GET /api/v1/orders?page=", " HTTP/1.1", 10),
    ("GET /healthz?probe=", " HTTP/1.1", 5),
)
STATUS_OK: Final = (("200", 80), ("201", 5), ("204", 3), ("304", 7), ("404", 4), ("301", 1))
STATUS_WARN: Final = (("401", 30), ("403", 10), ("404", 40), ("429", 20))
STATUS_ERROR: Final = (("500", 30), ("502", 20), ("503", 40), ("504", 10))

JSON_MESSAGES: Final = (
    # (level, prefix, suffix): the message is prefix + a number + suffix
    (INFO, "Order ", " placed"),
    (INFO, "Cart updated for session ", ""),
    (INFO, "Payment authorized for order ", ""),
    (INFO, "Served product page ", ""),
    (WARN, "Inventory cache miss for sku ", ", loading from database"),
    (WARN, "Slow response from pricing-service for request ", ""),
    (ERROR, "Checkout failed: payment-service returned 503 for order ", ""),
    (ERROR, "Checkout failed: could not acquire a database connection (waiting: ", ")"),
)
CHANGE_MESSAGES: Final = (
    (DEPLOY_S, "Deploying checkout-api version 3.2.0"),
    (ROLLBACK_S, "Rolling back checkout-api to 3.1.9"),
)
SERVICES: Final = strings(["checkout-api", "checkout-api", "cart-api", "catalog-api"])
HOSTS: Final = strings([f"app-{i:02d}" for i in range(1, 13)])

SYSLOG_MESSAGES: Final = (
    (INFO, "sshd", "Accepted publickey for ops from 10.20.0.", " port 51234 ssh2"),
    (INFO, "CRON", "(root) CMD (command -v debian-sa1 > /dev/null && debian-sa1 1 ", ")"),
    (INFO, "systemd", "Started session ", " of user ops."),
    (INFO, "kubelet", 'I0312 "SyncLoop (probe)" probe="readiness" status="ready" pod="checkout-', '"'),
    (WARN, "kernel", "TCP: request_sock_TCP: Possible SYN flooding on port ", ". Sending cookies."),
    (ERROR, "kernel", "nfs: server filer-01 not responding, still trying (", ")"),
    (ERROR, "dockerd", 'level=error msg="health check for container checkout-', ' timed out"'),
)

PY_MESSAGES: Final = (
    (INFO, "worker.tasks", "Task ", " done"),
    (INFO, "worker.tasks", "Fetched batch of ", " events from queue"),
    (INFO, "worker.email", "Sent ", " notification e-mails"),
    (WARN, "worker.tasks", "Task ", " retried after backoff"),
    (ERROR, "worker.tasks", "Task ", " failed: database unavailable"),
    (ERROR, "worker.sync", "Sync of shard ", " failed"),
)
PY_TRACES: Final = (
    [
        "Traceback (most recent call last):",
        '  File "/app/worker/tasks.py", line 88, in run',
        "    result = handler(payload)",
        '  File "/app/worker/db.py", line 41, in connect',
        "    return psycopg2.connect(self.dsn, connect_timeout=5)",
        "psycopg2.OperationalError: could not connect to server: Connection refused",
    ],
    [
        "Traceback (most recent call last):",
        '  File "/app/worker/sync.py", line 120, in sync_shard',
        "    resp.raise_for_status()",
        "requests.exceptions.HTTPError: 503 Server Error: Service Unavailable for url: http://checkout-api/internal",
    ],
)

J_MESSAGES: Final = (
    (INFO, "main", "com.example.orders.OrderService", "Order ", " processed"),
    (INFO, "http-nio-8080-exec-7", "com.example.orders.api.OrderController", "GET /orders/", " 200"),
    (INFO, "scheduling-1", "com.example.orders.jobs.ExpiryJob", "Expired ", " stale carts"),
    (
        WARN,
        "http-nio-8080-exec-3",
        "com.zaxxer.hikari.pool.HikariPool",
        "HikariPool-1 - Pool stats (total=10, waiting=",
        ")",
    ),
    (ERROR, "http-nio-8080-exec-9", "com.example.orders.OrderService", "Order ", " failed: could not reserve stock"),
)
J_TRACES: Final = (
    [
        "java.sql.SQLTransientConnectionException: HikariPool-1 - Connection is not available, "
        "request timed out after 30000ms.",
        "\tat com.zaxxer.hikari.pool.HikariPool.createTimeoutException(HikariPool.java:696)",
        "\tat com.zaxxer.hikari.pool.HikariPool.getConnection(HikariPool.java:197)",
        "\tat com.zaxxer.hikari.HikariDataSource.getConnection(HikariDataSource.java:128)",
        "\tat com.example.orders.repo.StockRepository.reserve(StockRepository.java:54)",
        "\tat com.example.orders.OrderService.place(OrderService.java:88)",
        "Caused by: org.postgresql.util.PSQLException: FATAL: sorry, too many clients already",
        "\tat org.postgresql.core.v3.ConnectionFactoryImpl.doAuthentication(ConnectionFactoryImpl.java:693)",
        "\t... 12 common frames omitted",
    ],
    [
        "org.springframework.web.client.ResourceAccessException: I/O error on POST request: Read timed out",
        "\tat org.springframework.web.client.RestTemplate.doExecute(RestTemplate.java:791)",
        "\tat com.example.orders.payment.PaymentClient.charge(PaymentClient.java:39)",
        "Caused by: java.net.SocketTimeoutException: Read timed out",
        "\tat java.base/sun.nio.ch.NioSocketImpl.timedRead(NioSocketImpl.java:288)",
    ],
)


def trace_vocab(traces: Sequence[Sequence[str]]) -> tuple[pa.Array, npt.NDArray[np.int64]]:
    """Index 0: no trace; index k: the k-th trace with a leading newline. Also the line count of each."""
    texts = ["", *("\n" + "\n".join(trace) for trace in traces)]
    return strings(texts), np.array([0, *(len(trace) for trace in traces)], dtype=np.int64)


def weighted(pairs: Sequence[tuple[str, int]]) -> tuple[pa.Array, npt.NDArray[np.float64]]:
    weights = np.array([w for _, w in pairs], dtype=np.float64)
    return strings([v for v, _ in pairs]), weights / weights.sum()


def by_level(
    levels: Int8Array, templates: Sequence[tuple[Any, ...]], rng: np.random.Generator
) -> npt.NDArray[np.int64]:
    """For each event, a random template index among the templates of its level."""
    out = np.zeros(len(levels), dtype=np.int64)
    for level in (INFO, WARN, ERROR):
        rows = np.flatnonzero(levels == level)
        choices = np.array([i for i, t in enumerate(templates) if t[0] == level], dtype=np.int64)
        out[rows] = choices[rng.integers(0, len(choices), len(rows))]
    return out


# --------------------------------------------------------------------------------------------------
# Formats


@dataclass(frozen=True)
class Chunk:
    """The events of one chunk of one file: times (ms since the window start), levels, trace choice."""

    times_ms: Int64Array
    levels: Int8Array
    traces: Int8Array
    rng: np.random.Generator
    start_ms: int
    end_ms: int

    def __len__(self) -> int:
        return len(self.times_ms)

    @property
    def seconds(self) -> Int64Array:
        return self.times_ms // 1000

    @property
    def millis(self) -> Int64Array:
        return self.times_ms % 1000

    def special(self, at_s: int) -> int | None:
        """Index of the first event at or after second ``at_s``, when ``at_s`` falls in this chunk's span."""
        if not self.start_ms <= at_s * 1000 < self.end_ms:
            return None
        index = int(np.searchsorted(self.times_ms, at_s * 1000))
        return index if index < len(self) else None


class LogFormat:
    """One file of the corpus: its name, trace vocabulary and a vectorized renderer."""

    file = ""
    description = ""
    time_zone = ""
    traces: tuple[pa.Array, npt.NDArray[np.int64]] = (strings([""]), np.zeros(1, dtype=np.int64))
    trace_share = 0.0  # share of error events that carry a stack trace

    def render(self, chunk: Chunk) -> pa.Array:
        raise NotImplementedError


class AccessLog(LogFormat):
    file = "access.log"
    description = "nginx combined + request time"
    time_zone = "+0100 offsets"

    def __init__(self) -> None:
        self.stamps = second_table(lambda t: t.astimezone(ACCESS_OFFSET).strftime("%d/%b/%Y:%H:%M:%S %z"))
        self.ips = strings([f"{a}.{b}.{c}.{d}" for a, b, c, d in np.random.default_rng(7).integers(1, 255, (4096, 4))])
        self.request_pre = strings([pre for pre, _, _ in REQUESTS])
        self.request_post = strings([post for _, post, _ in REQUESTS])
        weights = np.array([w for _, _, w in REQUESTS], dtype=np.float64)
        self.request_p = weights / weights.sum()
        self.status = {INFO: weighted(STATUS_OK), WARN: weighted(STATUS_WARN), ERROR: weighted(STATUS_ERROR)}

    def render(self, chunk: Chunk) -> pa.Array:
        rng, n = chunk.rng, len(chunk)
        request = rng.choice(len(REQUESTS), n, p=self.request_p)
        status_index = np.zeros(n, dtype=np.int64)
        status_vocab = strings([v for vocab, _ in self.status.values() for v in vocab.to_pylist()])
        base = 0
        for level, (vocab, p) in self.status.items():
            rows = np.flatnonzero(chunk.levels == level)
            status_index[rows] = base + rng.choice(len(vocab), len(rows), p=p)
            base += len(vocab)
        took_ms = np.where(chunk.levels == ERROR, rng.integers(1_000, 30_001, n), rng.integers(1, 900, n))
        return join(
            take(self.ips, rng.integers(0, 4096, n)),
            " - - [",
            take(self.stamps, chunk.seconds),
            '] "',
            take(self.request_pre, request),
            numbers(rng.integers(1, 99_999, n)),
            take(self.request_post, request),
            '" ',
            take(status_vocab, status_index),
            " ",
            numbers(rng.integers(0, 48_000, n)),
            ' "-" "',
            take(USER_AGENTS, rng.integers(0, len(USER_AGENTS), n)),
            '" ',
            numbers(took_ms // 1000),
            ".",
            take(MILLIS, took_ms % 1000),
            "\n",
        )


class EcsJson(LogFormat):
    file = "app.jsonl"
    description = "ECS JSON lines"
    time_zone = "UTC (Z)"

    def __init__(self) -> None:
        self.stamps = second_table(lambda t: t.strftime("%Y-%m-%dT%H:%M:%S"))
        self.levels = strings(["info", "warn", "error"])
        self.pre = strings([pre for _, pre, _ in JSON_MESSAGES])
        self.post = strings([post for _, _, post in JSON_MESSAGES])
        self.change_messages = strings([text for _, text in CHANGE_MESSAGES])

    def render(self, chunk: Chunk) -> pa.Array:
        rng, n = chunk.rng, len(chunk)
        # The deploy and the rollback replace the first event after their time: an info line of
        # checkout-api without HTTP fields (a line with a status code is a request, not a change).
        is_change = np.zeros(n, dtype=np.bool_)
        change_text = np.zeros(n, dtype=np.int64)
        for number, (at_s, _) in enumerate(CHANGE_MESSAGES):
            index = chunk.special(at_s)
            if index is not None:
                is_change[index] = True
                change_text[index] = number
        chunk.levels[is_change] = INFO
        template = by_level(chunk.levels, JSON_MESSAGES, rng)
        message = join(take(self.pre, template), numbers(rng.integers(1, 999_999, n)), take(self.post, template))
        status = np.where(chunk.levels == ERROR, 503, np.where(chunk.levels == WARN, 429, 200))
        service = np.where(is_change, 0, rng.integers(0, len(SERVICES), n))
        request = join(
            ',"http.response.status_code":',
            numbers(status),
            ',"event.duration":',
            numbers(rng.integers(100_000, 900_000_000, n)),
        )
        if is_change.any():
            changes = pa.array(is_change)
            message = pc.if_else(changes, take(self.change_messages, change_text), message)
            request = pc.if_else(changes, "", request)
        return join(
            '{"@timestamp":"',
            take(self.stamps, chunk.seconds),
            ".",
            take(MILLIS, chunk.millis),
            'Z","log.level":"',
            take(self.levels, chunk.levels),
            '","message":"',
            message,
            '","service.name":"',
            take(SERVICES, service),
            '","host.name":"',
            take(HOSTS, rng.integers(0, len(HOSTS), n)),
            '","trace.id":"',
            hex_ids(rng, n, 32),
            '"',
            request,
            "}\n",
        )


class Syslog(LogFormat):
    file = "syslog"
    description = "RFC 3164 syslog, no year"
    time_zone = "naive, UTC"

    def __init__(self) -> None:
        self.stamps = second_table(lambda t: f"{t:%b} {t.day:>2} {t:%H:%M:%S}")
        self.program = strings([f"{program}[" for _, program, _, _ in SYSLOG_MESSAGES])
        self.pre = strings([pre for _, _, pre, _ in SYSLOG_MESSAGES])
        self.post = strings([post for _, _, _, post in SYSLOG_MESSAGES])
        self.hosts = strings([f"node-{i:02d}" for i in range(1, 41)])

    def render(self, chunk: Chunk) -> pa.Array:
        rng, n = chunk.rng, len(chunk)
        template = by_level(chunk.levels, SYSLOG_MESSAGES, rng)
        return join(
            take(self.stamps, chunk.seconds),
            " ",
            take(self.hosts, rng.integers(0, 40, n)),
            " ",
            take(self.program, template),
            numbers(rng.integers(100, 65_000, n)),
            "]: ",
            take(self.pre, template),
            numbers(rng.integers(1, 255, n)),
            take(self.post, template),
            "\n",
        )


class PythonLogging(LogFormat):
    file = "worker.log"
    description = "Python logging, tracebacks"
    time_zone = "naive, UTC"
    traces = trace_vocab(PY_TRACES)
    trace_share = 0.8

    def __init__(self) -> None:
        self.stamps = second_table(lambda t: t.strftime("%Y-%m-%d %H:%M:%S"))
        self.head = strings(
            [f" - {logger} - {('INFO', 'WARNING', 'ERROR')[lvl]} - {pre}" for lvl, logger, pre, _ in PY_MESSAGES]
        )
        self.post = strings([post for _, _, _, post in PY_MESSAGES])

    def render(self, chunk: Chunk) -> pa.Array:
        rng, n = chunk.rng, len(chunk)
        template = by_level(chunk.levels, PY_MESSAGES, rng)
        return join(
            take(self.stamps, chunk.seconds),
            ",",
            take(MILLIS, chunk.millis),
            take(self.head, template),
            numbers(rng.integers(1, 99_999, n)),
            take(self.post, template),
            take(self.traces[0], chunk.traces),
            "\n",
        )


class Log4j(LogFormat):
    file = "service.log"
    description = "log4j, Java stack traces"
    time_zone = "naive, UTC"
    traces = trace_vocab(J_TRACES)
    trace_share = 0.8

    def __init__(self) -> None:
        self.stamps = second_table(lambda t: t.strftime("%Y-%m-%d %H:%M:%S"))
        self.head = strings(
            [
                f" {('INFO', 'WARN', 'ERROR')[lvl]:<5} [{thread}] {logger} - {pre}"
                for lvl, thread, logger, pre, _ in J_MESSAGES
            ]
        )
        self.post = strings([post for *_, post in J_MESSAGES])

    def render(self, chunk: Chunk) -> pa.Array:
        rng, n = chunk.rng, len(chunk)
        template = by_level(chunk.levels, J_MESSAGES, rng)
        return join(
            take(self.stamps, chunk.seconds),
            ",",
            take(MILLIS, chunk.millis),
            take(self.head, template),
            numbers(rng.integers(1, 999_999, n)),
            take(self.post, template),
            take(self.traces[0], chunk.traces),
            "\n",
        )


FORMATS: Final[dict[str, type[LogFormat]]] = {
    cls.file: cls for cls in (AccessLog, EcsJson, Syslog, PythonLogging, Log4j)
}


# --------------------------------------------------------------------------------------------------
# Events in time, with exact line budgets


def error_share(seconds: npt.NDArray[Any]) -> npt.NDArray[np.float64]:
    inside = (seconds >= INCIDENT_START_S) & (seconds < INCIDENT_END_S)
    return np.where(inside, INCIDENT_ERROR, BASE_ERROR)


def chunk_spans(fmt: LogFormat, lines: int, chunk_lines: int) -> list[tuple[int, int, int]]:
    """(lines, start ms, end ms) of each chunk, so that events are uniform in time across chunks.

    Error events carry traces, so the incident has more lines per second: chunk boundaries follow the
    cumulative expected lines, not the clock.
    """
    grid = np.arange(WINDOW_SECONDS, dtype=np.float64)
    mean_trace = float(fmt.traces[1][1:].mean()) if len(fmt.traces[1]) > 1 else 0.0
    density = 1.0 + error_share(grid) * fmt.trace_share * mean_trace
    cumulative = np.concatenate([[0.0], np.cumsum(density)])
    spans = []
    done = 0
    while done < lines:
        size = min(chunk_lines, lines - done)
        lo, hi = np.interp(
            [done / lines, (done + size) / lines], cumulative / cumulative[-1], np.arange(WINDOW_SECONDS + 1)
        )
        spans.append((size, int(lo * 1000), max(int(hi * 1000), int(lo * 1000) + 1)))
        done += size
    return spans


def make_chunk(fmt: LogFormat, lines: int, start_ms: int, end_ms: int, rng: np.random.Generator) -> Chunk:
    """Events in [start_ms, end_ms) whose head and trace lines add up to exactly ``lines``."""
    trace_lines = fmt.traces[1]
    mid = np.linspace(start_ms, end_ms, 16) / 1000
    expected = 1.0 + float(error_share(mid).mean()) * fmt.trace_share * (
        float(trace_lines[1:].mean()) if len(trace_lines) > 1 else 0.0
    )
    n = max(1, min(lines, round(lines / expected)))
    times = np.sort(rng.integers(start_ms, end_ms, n))
    roll = rng.random(n)
    p_error = error_share(times // 1000)
    levels = np.where(roll < p_error, ERROR, np.where(roll < p_error + WARNING, WARN, INFO)).astype(np.int8)
    traces = np.zeros(n, dtype=np.int8)
    if len(trace_lines) > 1:
        with_trace = (levels == ERROR) & (rng.random(n) < fmt.trace_share)
        traces[with_trace] = rng.integers(1, len(trace_lines), int(with_trace.sum()))
    total = n + int(trace_lines[traces].sum())
    if total > lines:  # drop traces (an error may be logged without one) until the budget holds
        carrying = rng.permutation(np.flatnonzero(traces))
        cut = np.searchsorted(np.cumsum(trace_lines[traces[carrying]]), total - lines)
        traces[carrying[: cut + 1]] = 0
        total = n + int(trace_lines[traces].sum())
    if total < lines:  # top up with single-line events
        extra = lines - total
        times = np.concatenate([times, rng.integers(start_ms, end_ms, extra)])
        extra_roll = rng.random(extra)
        extra_levels = np.where(extra_roll < error_share(times[-extra:] // 1000), ERROR, INFO).astype(np.int8)
        levels = np.concatenate([levels, extra_levels])
        traces = np.concatenate([traces, np.zeros(extra, dtype=np.int8)])
        order = np.argsort(times, kind="stable")
        times, levels, traces = times[order], levels[order], traces[order]
    return Chunk(times, levels, traces, rng, start_ms, end_ms)


def write_file(args: tuple[str, int, Path, int, int]) -> tuple[str, int, int, float]:
    """Write one file of the corpus; returns its name, lines, bytes and seconds taken."""
    name, lines, out, chunk_lines, seed = args
    began = time.perf_counter()
    fmt = FORMATS[name]()
    written = 0
    file_index = list(FORMATS).index(name)
    with (out / name).open("wb") as handle:
        for index, (size, start_ms, end_ms) in enumerate(chunk_spans(fmt, lines, chunk_lines)):
            rng = np.random.default_rng([seed, file_index, index])
            chunk = make_chunk(fmt, size, start_ms, end_ms, rng)
            data = array_bytes(fmt.render(chunk))
            handle.write(data)
            written += len(data)
    return name, lines, written, time.perf_counter() - began


def line_shares(lines: int) -> dict[str, int]:
    """Equal line shares per file; the remainder goes to the first files."""
    base, rest = divmod(lines, len(FORMATS))
    return {name: base + (index < rest) for index, name in enumerate(FORMATS)}


def iso(seconds: int) -> str:
    return (WINDOW_START + dt.timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--lines", type=int, default=DEFAULT_LINES, help="total lines, traces included")
    parser.add_argument("--out", type=Path, default=Path("bench/corpus"))
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--chunk-lines", type=int, default=DEFAULT_CHUNK_LINES)
    parser.add_argument("--workers", type=int, default=1, help="processes (files are written in parallel)")
    args = parser.parse_args(argv)
    if args.lines < len(FORMATS) or args.chunk_lines < 1:
        parser.error(f"--lines must be at least {len(FORMATS)} and --chunk-lines positive")
    args.out.mkdir(parents=True, exist_ok=True)
    shares = line_shares(args.lines)
    jobs = [(name, shares[name], args.out, args.chunk_lines, args.seed) for name in FORMATS]
    began = time.perf_counter()
    if args.workers > 1:
        with ProcessPoolExecutor(max_workers=args.workers) as pool:
            results = list(pool.map(write_file, jobs))
    else:
        results = [write_file(job) for job in jobs]
    elapsed = time.perf_counter() - began
    manifest: dict[str, Any] = {
        "lines": args.lines,
        "seed": args.seed,
        "chunk_lines": args.chunk_lines,
        "window": {"start": iso(0), "end": iso(WINDOW_SECONDS)},
        "incident": {
            "deploy": iso(DEPLOY_S),
            "burst_start": iso(INCIDENT_START_S),
            "rollback": iso(ROLLBACK_S),
            "burst_end": iso(INCIDENT_END_S),
            "error_share": {"baseline": BASE_ERROR, "burst": INCIDENT_ERROR},
        },
        "files": {},
    }
    total_bytes = 0
    for name, lines, size, seconds in results:
        fmt = FORMATS[name]
        manifest["files"][name] = {"format": fmt.description, "time_zone": fmt.time_zone, "lines": lines, "bytes": size}
        total_bytes += size
        print(f"{args.out / name!s:40} {lines:>12,} lines {size:>15,} bytes {seconds:7.1f} s")
    (args.out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    rate = args.lines / elapsed if elapsed else math.inf
    print(
        f"total  {args.lines:,} lines  {total_bytes:,} bytes  ({total_bytes / args.lines:.0f} bytes/line)  "
        f"in {elapsed:.1f} s ({rate / 1e6:.2f} M lines/s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
