"""Write the bundled sample incident (``sample_logs/``) and its true facts, deterministically.

The story: a bank's ``payments-api`` is deployed as v2.14.0 with its HikariCP ``maximumPoolSize``
raised from 20 to 200 per pod. Three pods then try to hold 600 connections on ``db-primary``
(``max_connections=400``); PostgreSQL refuses new clients, so payments-api, ledger-service and the
settlement worker, which share that database, fail to get connections. Payments fail at the edge
(HTTP 503/500/504), Alertmanager fires ``HighErrorRate`` and pages PagerDuty, the on-call engineer
acknowledges and rolls back to v2.13.4, the service recovers and the alert resolves.

Every line is generated from a fixed seed, and the true phases and impact (``truth.json``, the
README's facts) are computed from the generated records with the definitions of the incident
analysis (issue 4), never typed by hand. Run from the repository root::

    python bench/make_sample_incident.py            # rewrites sample_logs/
    python bench/make_sample_incident.py --out DIR  # writes elsewhere (the tests compare the bytes)
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import hashlib
import io
import json
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final
from zoneinfo import ZoneInfo

SEED: Final = 20240312
UTC: Final = dt.UTC
LOCAL_ZONE: Final = ZoneInfo("Europe/Amsterdam")  # CET (+01:00) on 12 March 2024: DST starts on 31 March

# All times are integer milliseconds since the epoch, UTC.
MS: Final = 1
SECOND: Final = 1000 * MS
MINUTE: Final = 60 * SECOND


def _at(hhmmss: str) -> int:
    """Milliseconds of ``2024-03-12T<hhmmss>Z`` (``HH:MM:SS`` or ``HH:MM:SS.fff``)."""
    stamp = dt.datetime.fromisoformat(f"2024-03-12T{hhmmss}+00:00")
    return int(stamp.timestamp() * 1000)


WINDOW_START: Final = _at("08:00:00")
WINDOW_END: Final = _at("10:00:00")
DEPLOY_AT: Final = _at("08:49:30")  # Argo CD starts the sync of v2.14.0
NEW_PODS_UP: Final = _at("08:50:41")  # last v2.14.0 pod ready
BAD_FROM: Final = _at("08:51:03.400")  # connections exhausted: requests arriving from here on can fail
ROLLBACK_AT: Final = _at("09:17:05")  # the on-call engineer starts the rollback
GOOD_FROM: Final = _at("09:18:40")  # v2.13.4 pods ready again
DRAIN_END: Final = _at("09:19:30")  # the last v2.14.0 pod is gone; connections freed
SYSLOG_ROTATED_AT: Final = _at("08:30:01")  # hosts/syslog.1.gz holds the lines before this

EDGE_RATE_PER_S: Final = 0.45
USERS: Final = 900

# File paths inside sample_logs/.
NGINX: Final = "edge/nginx_access.log"
PAYMENTS: Final = "payments/payments-api.jsonl"
LEDGER: Final = "ledger/ledger.log"
WORKER: Final = "workers/settlement-worker.log"
SYSLOG: Final = "hosts/syslog"
SYSLOG_OLD: Final = "hosts/syslog.1.gz"
ARGOCD: Final = "deploy/argocd.logfmt"
ALERTMANAGER: Final = "alerts/alertmanager.json"
PAGERDUTY: Final = "alerts/pagerduty.json"

#: Per file: format (as written), time zone of its timestamps, how it names its service.
FILES: Final[dict[str, tuple[str, str, str]]] = {
    NGINX: (
        "nginx combined + request time + request id",
        "explicit offset +0100",
        "its directory, edge (requests counted here)",
    ),
    PAYMENTS: ("ECS JSON lines (ecs-logging-java)", "UTC (`Z`)", "`service.name` payments-api"),
    LEDGER: (
        "Spring Boot 2 + Sleuth (logback), Java stack traces",
        "naive local time, Europe/Amsterdam (+01:00)",
        "`[ledger-service,traceId,spanId]`",
    ),
    WORKER: ("Python logging, tracebacks", "naive, UTC", "file name settlement-worker (its logger has the same name)"),
    SYSLOG: ("syslog RFC 3164 (no year), several hosts", "naive, UTC", "program (sshd, CRON, systemd, kubelet)"),
    SYSLOG_OLD: ("same, rotated part, gzip", "naive, UTC", "program"),
    ARGOCD: ("logfmt (Argo CD)", "UTC (`Z`)", "`app=`"),
    ALERTMANAGER: ("Alertmanager webhook v4, NDJSON", "UTC (`Z`)", "label `service`"),
    PAGERDUTY: ("PagerDuty webhook v3, JSON array", "UTC (`Z`)", "`data.service.summary`"),
}

#: The options a user must give so that every naive timestamp is read in its true zone.
SOURCE_TZ_OPTION: Final = "--source-tz '*ledger.log=Europe/Amsterdam'"


# --------------------------------------------------------------------------------------------------
# Time rendering, one function per format. Each returns the text and the time as written (ms), since
# a format that writes whole seconds moves the event to the start of its second.


EPOCH: Final = dt.datetime(1970, 1, 1, tzinfo=UTC)


def _utc(ms: int) -> dt.datetime:
    return EPOCH + dt.timedelta(milliseconds=ms)  # integer arithmetic: no float rounding


def _floor_s(ms: int) -> int:
    return ms - ms % SECOND


def nginx_time(ms: int) -> tuple[str, int]:
    local = _utc(_floor_s(ms)).astimezone(LOCAL_ZONE)
    return local.strftime("%d/%b/%Y:%H:%M:%S %z"), _floor_s(ms)


def iso_ms(ms: int) -> str:
    return _utc(ms).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % SECOND:03d}Z"


def iso_go(ms: int) -> str:
    """RFC 3339 as Go's time.RFC3339Nano writes it: trailing zeros of the fraction trimmed."""
    fraction = f"{ms % SECOND:03d}".rstrip("0")
    return _utc(ms).strftime("%Y-%m-%dT%H:%M:%S") + (f".{fraction}" if fraction else "") + "Z"


def iso_truth(ms: int) -> str:
    """ISO 8601 in UTC with ``Z``; milliseconds only when the time has a fraction."""
    return iso_go(ms) if ms % SECOND == 0 else iso_ms(ms)


def ledger_time(ms: int) -> str:
    local = _utc(ms).astimezone(LOCAL_ZONE)
    return local.strftime("%Y-%m-%d %H:%M:%S.") + f"{ms % SECOND:03d}"


def python_time(ms: int) -> str:
    return _utc(ms).strftime("%Y-%m-%d %H:%M:%S,") + f"{ms % SECOND:03d}"


def syslog_time(ms: int) -> tuple[str, int]:
    stamp = _utc(_floor_s(ms))
    return f"{stamp:%b} {stamp.day:>2} {stamp:%H:%M:%S}", _floor_s(ms)


def logfmt_time(ms: int) -> tuple[str, int]:
    return _utc(_floor_s(ms)).strftime("%Y-%m-%dT%H:%M:%SZ"), _floor_s(ms)


# --------------------------------------------------------------------------------------------------
# Records


@dataclass
class Record:
    """One event as written to one file; the truth is computed from these."""

    file: str
    time_ms: int  # position in the file: the written time (alert payloads: when the webhook was sent)
    lines: list[str]
    event_ms: int = -1  # the event's own time (alerts: startsAt/endsAt/occurred_at); -1 = time_ms
    service: str | None = None
    host: str | None = None
    error: bool = False  # level error or worse, or HTTP status >= 500
    incident: bool = False  # caused by the incident (as opposed to background noise)
    user: str | None = None  # structured user field, as the parser sees it
    edge_status: int | None = None  # HTTP status of an edge request
    message: str = ""
    tag: str = ""  # marks the records that set phases: deploy, rollback, alert states
    order: int = 0
    line: int = 0  # 1-based line of the first line in its file, set when written

    @property
    def when(self) -> int:
        return self.time_ms if self.event_ms < 0 else self.event_ms


@dataclass
class Sample:
    rng: random.Random
    records: list[Record] = field(default_factory=list)

    def add(self, record: Record) -> Record:
        record.order = len(self.records)
        self.records.append(record)
        return record

    def hex_id(self, digits: int) -> str:
        return f"{self.rng.getrandbits(4 * digits):0{digits}x}"


# --------------------------------------------------------------------------------------------------
# Writers of one line each


def payments_json(
    sample: Sample,
    ms: int,
    level: str,
    message: str,
    *,
    logger: str,
    host: str,
    version: str,
    extra: dict[str, Any] | None = None,
    incident: bool = False,
    tag: str = "",
) -> Record:
    doc: dict[str, Any] = {
        "@timestamp": iso_ms(ms),
        "log.level": level,
        "message": message,
        "ecs.version": "1.2.0",
        "service.name": "payments-api",
        "service.version": version,
        "host.name": host,
        "process.thread.name": f"http-nio-8080-exec-{sample.rng.randint(1, 40)}",
        "log.logger": logger,
    }
    doc.update(extra or {})
    status = doc.get("http.response.status_code")
    error = level in ("ERROR", "FATAL") or (isinstance(status, int) and status >= 500)
    return sample.add(
        Record(
            file=PAYMENTS,
            time_ms=ms,
            lines=[json.dumps(doc, separators=(",", ":"), ensure_ascii=False)],
            service="payments-api",
            host=host,
            error=error,
            incident=incident,
            user=doc.get("user.id") if error else None,
            message=message,
            tag=tag,
        )
    )


def ledger_log(
    sample: Sample,
    ms: int,
    level: str,
    logger: str,
    message: str,
    *,
    trace: str = "",
    trace_lines: Sequence[str] = (),
    thread: str = "main",
    incident: bool = False,
) -> Record:
    span = trace[16:] if trace else ""
    # Spring Boot 2's default pattern with Sleuth: %5p [app,traceId,spanId] pid --- [%15.15t] %-40.40logger{39} :
    mdc = f"[ledger-service,{trace},{span}]"
    head = f"{ledger_time(ms)} {level:>5} {mdc} 1 --- [{thread[-15:]:>15}] {logger:<40} : {message}"
    return sample.add(
        Record(
            file=LEDGER,
            time_ms=ms,
            lines=[head, *trace_lines],
            service="ledger-service",
            error=level in ("ERROR", "FATAL"),
            incident=incident,
            message=message,
        )
    )


def worker_log(
    sample: Sample, ms: int, level: str, message: str, *, traceback: Sequence[str] = (), incident: bool = False
) -> Record:
    head = f"{python_time(ms)} - settlement-worker - {level} - {message}"
    return sample.add(
        Record(
            file=WORKER,
            time_ms=ms,
            lines=[head, *traceback],
            service="settlement-worker",
            error=level in ("ERROR", "CRITICAL"),
            incident=incident,
            message=message,
        )
    )


def syslog_line(sample: Sample, ms: int, host: str, program: str, message: str) -> Record:
    text, written = syslog_time(ms)
    path = SYSLOG_OLD if written < SYSLOG_ROTATED_AT else SYSLOG
    return sample.add(
        Record(file=path, time_ms=written, lines=[f"{text} {host} {program}: {message}"], host=host, message=message)
    )


def argocd_line(sample: Sample, ms: int, msg: str, app: str, *, tag: str = "", **fields: str) -> Record:
    text, written = logfmt_time(ms)
    pairs = " ".join(f"{key.replace('_', '-')}={value}" for key, value in fields.items())
    line = f'time="{text}" level=info msg="{msg}" app={app} {pairs}'.rstrip()
    return sample.add(Record(file=ARGOCD, time_ms=written, lines=[line], service=app, message=msg, tag=tag))


# --------------------------------------------------------------------------------------------------
# Stack traces


def hikari_trace(caller: Sequence[str]) -> list[str]:
    """A HikariCP connection timeout whose cause is PostgreSQL refusing new clients."""
    return [
        "java.sql.SQLTransientConnectionException: HikariPool-1 - Connection is not available, "
        "request timed out after 30000ms.",
        "\tat com.zaxxer.hikari.pool.HikariPool.createTimeoutException(HikariPool.java:696)",
        "\tat com.zaxxer.hikari.pool.HikariPool.getConnection(HikariPool.java:197)",
        "\tat com.zaxxer.hikari.pool.HikariPool.getConnection(HikariPool.java:162)",
        "\tat com.zaxxer.hikari.HikariDataSource.getConnection(HikariDataSource.java:128)",
        "\tat org.springframework.jdbc.datasource.DataSourceUtils.fetchConnection(DataSourceUtils.java:159)",
        *caller,
        "Caused by: org.postgresql.util.PSQLException: FATAL: sorry, too many clients already",
        "\tat org.postgresql.core.v3.ConnectionFactoryImpl.doAuthentication(ConnectionFactoryImpl.java:693)",
        "\tat org.postgresql.core.v3.ConnectionFactoryImpl.openConnectionImpl(ConnectionFactoryImpl.java:203)",
        "\tat com.zaxxer.hikari.pool.PoolBase.newConnection(PoolBase.java:359)",
        "\t... 3 common frames omitted",
    ]


LEDGER_CALLER: Final = (
    "\tat com.example.bank.ledger.repo.JournalRepository.insert(JournalRepository.java:88)",
    "\tat com.example.bank.ledger.service.PostingService.post(PostingService.java:61)",
    "\tat com.example.bank.ledger.api.PostingController.create(PostingController.java:47)",
)
PAYMENTS_CALLER: Final = (
    "\tat com.example.bank.payments.repo.PaymentRepository.save(PaymentRepository.java:112)",
    "\tat com.example.bank.payments.service.AuthorizationService.authorize(AuthorizationService.java:74)",
    "\tat com.example.bank.payments.api.PaymentController.create(PaymentController.java:58)",
)
PAYMENTS_DB_TRACE: Final = "\n".join(
    [
        "org.springframework.transaction.CannotCreateTransactionException: Could not open JDBC Connection for "
        "transaction; nested exception is java.sql.SQLTransientConnectionException: HikariPool-1 - Connection is "
        "not available, request timed out after 30000ms.",
        "\tat org.springframework.jdbc.datasource.DataSourceTransactionManager.doBegin("
        "DataSourceTransactionManager.java:309)",
        PAYMENTS_CALLER[1],
        "Caused by: java.sql.SQLTransientConnectionException: HikariPool-1 - Connection is not available, "
        "request timed out after 30000ms.",
        "\tat com.zaxxer.hikari.pool.HikariPool.createTimeoutException(HikariPool.java:696)",
        "Caused by: org.postgresql.util.PSQLException: FATAL: sorry, too many clients already",
        "\t... 12 common frames omitted",
    ]
)
LEDGER_TIMEOUT_TRACE: Final = "\n".join(
    [
        "org.springframework.web.client.ResourceAccessException: I/O error on POST request for "
        '"http://ledger-service:8080/ledger/postings": Read timed out',
        "\tat org.springframework.web.client.RestTemplate.doExecute(RestTemplate.java:791)",
        "\tat com.example.bank.payments.ledger.LedgerClient.post(LedgerClient.java:39)",
        "\tat com.example.bank.payments.service.AuthorizationService.authorize(AuthorizationService.java:81)",
        "Caused by: java.net.SocketTimeoutException: Read timed out",
        "\tat java.base/sun.nio.ch.NioSocketImpl.timedRead(NioSocketImpl.java:288)",
    ]
)


def worker_traceback(exc_line: str) -> list[str]:
    return [
        "Traceback (most recent call last):",
        '  File "/app/settlement/worker.py", line 112, in run_batch',
        "    conn = self._connect()",
        '  File "/app/settlement/worker.py", line 64, in _connect',
        "    return psycopg2.connect(self.dsn, connect_timeout=10)",
        '  File "/usr/local/lib/python3.11/site-packages/psycopg2/__init__.py", line 122, in connect',
        "    conn = _connect(dsn, connection_factory=connection_factory, **kwasync)",
        exc_line,
    ]


# --------------------------------------------------------------------------------------------------
# The traffic at the edge, through payments-api and ledger-service

BROWSER_UA: Final = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.0.0 Safari/537.36"
)
AGENTS: Final = (
    ("BankApp/5.3.1 (iPhone; iOS 17.3.1)", 40),
    ("BankApp/5.3.0 (Android 14; Pixel 8)", 30),
    (BROWSER_UA, 25),
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_3) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/17.3 Safari/605.1.15",
        5,
    ),
)
PAYMENTS_HOSTS: Final = ("pay-01", "pay-02", "pay-03")
SCANNER_PATHS: Final = (
    "/wp-login.php",
    "/.env",
    "/admin/",
    "/phpmyadmin/",
    "/.git/config",
    "/server-status",
    "/actuator/env",
    "/api/v1/../../etc/passwd",
    "/cgi-bin/luci",
    "/owa/auth/logon.aspx",
)


def client_ip(user_index: int) -> str:
    nets = ("198.51.100", "203.0.113", "192.0.2")
    return f"{nets[user_index % 3]}.{1 + (user_index * 7) % 240}"


def failure_probability(arrival: int, write: bool) -> float:
    """Chance that a payments request arriving at ``arrival`` fails (pool exhaustion)."""
    if arrival < BAD_FROM or arrival >= DRAIN_END:
        return 0.0
    if arrival < GOOD_FROM:
        p = 0.35 + 0.45 * min(1.0, (arrival - BAD_FROM) / (150 * SECOND))
    else:  # v2.13.4 serves; the last v2.14.0 pod still holds connections until DRAIN_END
        p = 0.8 * (DRAIN_END - arrival) / (DRAIN_END - GOOD_FROM)
    return p if write else 0.6 * p


def edge_line(
    ip: str, end: int, method: str, path: str, status: int, size: int, referer: str, agent: str, took: float, rid: str
) -> tuple[str, int]:
    text, written = nginx_time(end)
    line = f'{ip} - - [{text}] "{method} {path} HTTP/1.1" {status} {size} "{referer}" "{agent}" {took:.3f} {rid}'
    return line, written


def add_edge(sample: Sample, line: str, written: int, status: int, *, incident: bool) -> None:
    sample.add(
        Record(
            file=NGINX,
            time_ms=written,
            lines=[line],
            error=status >= 500,
            incident=incident,
            edge_status=status,
            message=line,
        )
    )


def generate_traffic(sample: Sample) -> None:
    """Client requests at the edge; payments requests also log in payments-api (and ledger-service)."""
    rng = sample.rng
    agents = [agent for agent, _ in AGENTS]
    weights = [weight for _, weight in AGENTS]
    first_failure_forced = False
    arrival = float(WINDOW_START)
    while True:
        arrival += rng.expovariate(EDGE_RATE_PER_S) * SECOND
        t0 = int(arrival)
        if t0 >= WINDOW_END - 40 * SECOND:
            break
        user_index = 1 + int(rng.random() ** 2 * USERS)
        user = f"cust-{user_index:05d}"
        ip = client_ip(user_index)
        agent = rng.choices(agents, weights)[0]
        rid = sample.hex_id(32)
        referer = "https://netbank.example.com/" if agent.startswith("Mozilla") else "-"
        roll = rng.random()
        if roll < 0.30:
            method, path, write = "POST", "/api/v1/payments", True
        elif roll < 0.42:
            method, path, write = "GET", f"/api/v1/payments/pay_{sample.hex_id(12)}", False
        elif roll < 0.50:
            method, path, write = "POST", "/api/v1/transfers", True
        elif roll < 0.82:
            acct = f"NL{rng.randint(10, 99)}EXMP{rng.randint(10**9, 10**10 - 1)}"
            method, path, write = "GET", f"/api/v1/accounts/{acct}/balance", False
        elif roll < 0.93:
            method, path, write = "GET", "/api/v1/accounts/transactions?limit=20", False
        else:
            method, path, write = "GET", f"/static/js/app.{rng.choice(('3f9c1', '3f9c1', '7a2e0'))}.js", False

        if not path.startswith(("/api/v1/payments", "/api/v1/transfers")):
            # accounts-service and static files: not logged beyond the edge, unaffected.
            took = rng.lognormvariate(-3.2, 0.5)
            status = 200 if rng.random() > 0.01 else 404
            if path.startswith("/static") and rng.random() < 0.4:
                status = 304
            size = 0 if status == 304 else rng.randint(180, 2400)
            line, written = edge_line(ip, t0 + int(took * 1000), method, path, status, size, referer, agent, took, rid)
            add_edge(sample, line, written, status, incident=False)
            continue

        p = failure_probability(t0, write)
        fails = p > 0 and (rng.random() < p or not first_failure_forced)
        if fails:
            first_failure_forced = True
        host = rng.choice(PAYMENTS_HOSTS)
        version = "2.14.0" if NEW_PODS_UP <= t0 < GOOD_FROM else "2.13.4"
        logger = "com.example.bank.payments.api.PaymentController"
        base: dict[str, Any] = {
            "trace.id": rid,
            "http.request.id": rid,
            "http.request.method": method,
            "url.path": path,
            "client.ip": ip,
            "user.id": user,
        }
        if not fails:
            took = rng.lognormvariate(-2.3, 0.45)
            end = t0 + int(took * 1000)
            status = {"POST": 201 if "payments" in path else 202, "GET": 200}[method]
            if write and rng.random() < 0.02:
                status = 422
                message = "Payment rejected: insufficient funds"
                level = "WARN"
            elif method == "GET":
                message, level = "Payment status served", "INFO"
            elif "transfers" in path:
                message, level = f"Transfer tr_{sample.hex_id(10)} accepted", "INFO"
            else:
                message, level = (
                    f"Payment pay_{sample.hex_id(12)} authorized (EUR {rng.randint(5, 900)}.{rng.randint(0, 99):02d})",
                    "INFO",
                )
            extra = {**base, "http.response.status_code": status, "event.duration": int(took * 1e9) - 2_000_000}
            payments_json(sample, end - 2, level, message, logger=logger, host=host, version=version, extra=extra)
            line, written = edge_line(ip, end, method, path, status, rng.randint(90, 600), referer, agent, took, rid)
            add_edge(sample, line, written, status, incident=False)
            continue

        mode = "ledger" if write and rng.random() < 0.4 else "db"
        if mode == "db":
            app_took = 30.0 + rng.uniform(0.004, 0.060)
            app_end = t0 + int(app_took * 1000)
            extra = {
                **base,
                "http.response.status_code": 503,
                "event.duration": int(app_took * 1e9),
                "error.type": "org.springframework.transaction.CannotCreateTransactionException",
                "error.message": "Could not open JDBC Connection for transaction",
                "error.stack_trace": PAYMENTS_DB_TRACE,
            }
            message = "Payment request failed: could not obtain a database connection"
            payments_json(
                sample, app_end, "ERROR", message, logger=logger, host=host, version=version, extra=extra, incident=True
            )
            if rng.random() < 0.08:  # nginx gave up first (proxy_read_timeout 30s)
                edge_status, edge_took, edge_end = 504, 30.000, t0 + 30_000
            else:
                edge_status, edge_took, edge_end = 503, app_took + 0.001, app_end + 1
            line, written = edge_line(ip, edge_end, method, path, edge_status, 182, referer, agent, edge_took, rid)
            add_edge(sample, line, written, edge_status, incident=True)
        else:
            app_took = 5.0 + rng.uniform(0.030, 0.090)
            app_end = t0 + int(app_took * 1000)
            extra = {
                **base,
                "http.response.status_code": 500,
                "event.duration": int(app_took * 1e9),
                "error.type": "org.springframework.web.client.ResourceAccessException",
                "error.message": "I/O error on POST request for ledger-service: Read timed out",
                "error.stack_trace": LEDGER_TIMEOUT_TRACE,
            }
            message = "Ledger posting failed: ledger-service did not answer within 5000 ms"
            payments_json(
                sample, app_end, "ERROR", message, logger=logger, host=host, version=version, extra=extra, incident=True
            )
            line, written = edge_line(ip, app_end + 1, method, path, 500, 196, referer, agent, app_took + 0.001, rid)
            add_edge(sample, line, written, 500, incident=True)
            # ledger-service waits for a connection for 30 s, long after payments-api gave up.
            ledger_end = t0 + 30 + 30_000 + rng.randint(2, 40)
            ledger_log(
                sample,
                ledger_end,
                "ERROR",
                "c.e.bank.ledger.api.PostingController",
                f"Posting pst_{sample.hex_id(10)} failed: could not obtain a database connection",
                trace=rid,
                trace_lines=hikari_trace(LEDGER_CALLER),
                thread=f"nio-8080-exec-{rng.randint(1, 30)}",
                incident=True,
            )


# --------------------------------------------------------------------------------------------------
# Services' own rhythms, deploys, alerts and noise


def datasource_message(pool: int) -> str:
    return (
        "HikariPool-1 - Starting with url=jdbc:postgresql://payments:hunter2@db-primary.internal:5432/payments"
        f" maximumPoolSize={pool} connectionTimeout=30000"
    )


def previous_pod(pod: str) -> str:
    """A stable name for the pod that ``pod`` replaces (derived, so the random sequence is untouched)."""
    digest = hashlib.sha256(pod.encode()).hexdigest()
    return f"payments-api-{digest[:9]}-{digest[9:14]}"


def klog_prefix(ms: int, micros: int) -> str:
    """The kubelet's own klog header (``I0312 08:49:39.512334    1187``) inside its syslog line."""
    return f"I0312 {_utc(ms):%H:%M:%S}.{micros:06d}    1187"


def generate_changes(sample: Sample) -> None:
    """Argo CD syncs, payments-api lifecycle lines and the kubelet's container restarts."""
    rng = sample.rng
    lifecycle = "com.example.bank.payments.lifecycle.DeployHook"
    boot = "com.example.bank.payments.PaymentsApiApplication"
    for at, app, rev, msg in (
        (_at("08:20:11"), "accounts-service", "v5.2.2", "sync started: deploying v5.2.2"),
        (DEPLOY_AT, "payments-api", "v2.14.0", "sync started: deploying v2.14.0"),
    ):
        tag = "deploy" if app == "payments-api" else ""
        argocd_line(sample, at, msg, app, tag=tag, revision=rev, initiator="ci-pipeline", dest_namespace=app)
        # Healthy once the last pod of the rolling update is ready.
        argocd_line(sample, at + 90_000, "sync succeeded", app, revision=rev, health="Healthy", phase="Succeeded")
    argocd_line(
        sample,
        ROLLBACK_AT,
        "rollback to v2.13.4 started",
        "payments-api",
        tag="rollback",
        revision="v2.13.4",
        history_id="41",
        initiator="oncall-payments",
    )
    argocd_line(
        sample,
        GOOD_FROM + 2_000,
        "sync succeeded",
        "payments-api",
        revision="v2.13.4",
        health="Healthy",
        phase="Succeeded",
    )
    for minute in range(0, 120, 15):  # the controller's periodic refreshes
        for app in ("payments-api", "accounts-service"):
            at = WINDOW_START + minute * MINUTE + rng.randint(1_000, 50_000)
            argocd_line(sample, at, "Refreshing app status (controller refresh requested)", app, level_detail="normal")

    payments_json(
        sample,
        DEPLOY_AT + 1_214,
        "INFO",
        "Deploying payments-api version 2.14.0",
        logger=lifecycle,
        host="pay-01",
        version="2.13.4",
        tag="deploy",
    )
    payments_json(
        sample,
        ROLLBACK_AT + 1_377,
        "INFO",
        "Rolling back payments-api to 2.13.4",
        logger=lifecycle,
        host="pay-01",
        version="2.14.0",
        tag="rollback",
    )
    for index, host in enumerate(PAYMENTS_HOSTS):
        for start, version, pool in ((DEPLOY_AT + 9_000, "2.14.0", 200), (ROLLBACK_AT + 12_000, "2.13.4", 20)):
            stop = start + index * 19_000 + rng.randint(0, 3_000)
            pod = f"payments-api-{sample.hex_id(9)}-{sample.hex_id(5)}"
            micros = rng.randint(0, 999_999)
            syslog_line(
                sample,
                stop,
                host,
                "kubelet[1187]",
                f'{klog_prefix(stop, micros)} kuberuntime_container.go:709] "Killing container with a grace period" '
                f'pod="payments/{previous_pod(pod)}" containerName="payments-api" gracePeriod=30',
            )
            ready = stop + 38_000 + rng.randint(0, 2_000)
            syslog_line(
                sample,
                stop + 2_000,
                host,
                "kubelet[1187]",
                f'{klog_prefix(stop + 2_000, micros // 7)} kubelet.go:2457] "SyncLoop (PLEG): event for pod" '
                f'pod="payments/{pod}" '
                'event={"Type":"ContainerStarted"}',
            )
            payments_json(
                sample,
                ready - 800,
                "INFO",
                datasource_message(pool),
                logger="com.zaxxer.hikari.HikariDataSource",
                host=host,
                version=version,
            )
            payments_json(
                sample,
                ready,
                "INFO",
                f"Started payments-api v{version} in {rng.uniform(36, 40):.3f} seconds "
                f"(process running for {rng.uniform(40, 44):.2f})",
                logger=boot,
                host=host,
                version=version,
            )


def generate_ledger_and_worker(sample: Sample) -> None:
    rng = sample.rng
    stats = "c.e.bank.ledger.metrics.PoolStats"
    for minute in range(120):
        at = WINDOW_START + minute * MINUTE + 30_000 + rng.randint(0, 900)
        degraded = BAD_FROM <= at < DRAIN_END + 30 * SECOND
        if degraded:
            ledger_log(
                sample,
                at,
                "WARN",
                stats,
                f"HikariPool-1 saturated: active=10 idle=0 waiting={rng.randint(8, 30)}",
                thread="scheduling-1",
                incident=True,
            )
        else:
            ledger_log(
                sample,
                at,
                "INFO",
                stats,
                f"Posted {rng.randint(9, 21)} journal entries in the last 60s; "
                f"HikariPool-1 active={rng.randint(1, 4)} idle={rng.randint(6, 9)} waiting=0",
                thread="scheduling-1",
            )
        batch = 8760 + minute
        start = WINDOW_START + minute * MINUTE + rng.randint(200, 900)
        if BAD_FROM + 20 * SECOND <= start < DRAIN_END:
            worker_log(sample, start, "INFO", f"Starting settlement batch {batch}")
            worker_log(
                sample,
                start + rng.randint(3, 15),
                "ERROR",
                f"Settlement batch {batch} failed; will retry in 60s",
                traceback=worker_traceback(
                    'psycopg2.OperationalError: connection to server at "db-primary.internal" (10.20.4.10), '
                    "port 5432 failed: FATAL:  sorry, too many clients already"
                ),
                incident=True,
            )
        else:
            count = rng.randint(8, 30)
            worker_log(sample, start, "INFO", f"Starting settlement batch {batch}")
            worker_log(
                sample,
                start + rng.randint(400, 1500),
                "INFO",
                f"Settlement batch {batch} done: {count} payments, "
                f"EUR {rng.randint(2000, 40000)}.{rng.randint(0, 99):02d}",
            )
    # Slow queries: warnings, not errors.
    for at in (_at("08:07:12.331"), _at("08:33:50.090"), _at("09:31:07.512"), _at("09:52:44.207")):
        ledger_log(
            sample,
            at,
            "WARN",
            "o.h.e.jdbc.internal.StatementLogger",
            f"Slow query ({rng.randint(1200, 2900)} ms): "
            "select * from journal_entry where account_id=? order by booked_at desc",
            thread=f"nio-8080-exec-{rng.randint(1, 30)}",
        )


def generate_noise(sample: Sample) -> None:
    """Background: cron, ssh logins, an unrelated restart, a scanner, a flaky FX provider, rare errors."""
    rng = sample.rng
    hosts = ("pay-01", "pay-02", "pay-03", "batch-01")
    for minute in range(0, 120, 5):
        for host in hosts:
            at = WINDOW_START + minute * MINUTE + 1_000 + rng.randint(0, 900)
            pid = rng.randint(20000, 40000)
            syslog_line(
                sample, at, host, f"CRON[{pid}]", "(root) CMD (command -v debian-sa1 > /dev/null && debian-sa1 1 1)"
            )
    for minute in (4, 38, 77, 101):
        at = WINDOW_START + minute * MINUTE + rng.randint(0, 59_000)
        host = rng.choice(hosts)
        pid = rng.randint(40000, 60000)
        syslog_line(
            sample,
            at,
            host,
            f"sshd[{pid}]",
            f"Accepted publickey for ops from 10.20.0.5 port {rng.randint(40000, 60000)} "
            "ssh2: ED25519 SHA256:Jx3f2Lq0sample",
        )
        syslog_line(
            sample,
            at + 120,
            host,
            f"sshd[{pid}]",
            "pam_unix(sshd:session): session opened for user ops(uid=1001) by (uid=0)",
        )
        syslog_line(sample, at + 400, host, "systemd-logind[612]", f"New session {rng.randint(300, 900)} of user ops.")
        syslog_line(sample, at + 200_000, host, f"sshd[{pid}]", "pam_unix(sshd:session): session closed for user ops")
    for minute in (12, 64):
        at = WINDOW_START + minute * MINUTE + rng.randint(0, 59_000)
        syslog_line(
            sample,
            at,
            "batch-01",
            f"sshd[{rng.randint(40000, 60000)}]",
            f"Invalid user admin from 198.51.100.250 port {rng.randint(40000, 60000)}",
        )
    # The unrelated earlier restart: log shipper on the batch host, long before the incident.
    restart = _at("08:06:40")
    syslog_line(
        sample, restart, "batch-01", "systemd[1]", "fluent-bit.service: Main process exited, code=killed, status=9/KILL"
    )
    syslog_line(sample, restart + 5, "batch-01", "systemd[1]", "fluent-bit.service: Failed with result 'signal'.")
    syslog_line(
        sample,
        restart + 5_100,
        "batch-01",
        "systemd[1]",
        "fluent-bit.service: Scheduled restart job, restart counter is at 1.",
    )
    syslog_line(sample, restart + 5_200, "batch-01", "systemd[1]", "Stopped fluent-bit.service - Fluent Bit.")
    syslog_line(sample, restart + 5_300, "batch-01", "systemd[1]", "Started fluent-bit.service - Fluent Bit.")

    # A vulnerability scanner: many 404s in half a minute (not errors), twice.
    for start in (_at("08:24:10"), _at("09:08:31")):
        for index, path in enumerate(SCANNER_PATHS * 3):
            end = start + index * 900 + rng.randint(0, 400)
            took = rng.uniform(0.001, 0.004)
            status = 403 if path == "/actuator/env" else 404
            line, written = edge_line(
                "203.0.113.250", end, "GET", path, status, 153, "-", "Mozilla/5.0 zgrab/0.x", took, sample.hex_id(32)
            )
            add_edge(sample, line, written, status, incident=False)

    # One unrelated 502 at the edge (accounts-service blip), before the incident.
    line, written = edge_line(
        client_ip(77),
        _at("08:11:42.310"),
        "GET",
        "/api/v1/accounts/transactions?limit=20",
        502,
        166,
        "-",
        AGENTS[0][0],
        0.021,
        sample.hex_id(32),
    )
    add_edge(sample, line, written, 502, incident=False)

    # The flaky FX-rate provider: warnings every ~12 minutes, rare errors (one of them during the incident).
    fx_logger = "com.example.bank.payments.fx.FxRateClient"
    token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJwYXltZW50cy1hcGkifQ.c2FtcGxlLXNpZ25hdHVyZQ"
    for minute in range(3, 120, 12):
        at = WINDOW_START + minute * MINUTE + rng.randint(0, 59_000)
        payments_json(
            sample,
            at,
            "WARN",
            "FX rate provider fx-rates.example.net timed out after 2000 ms; using cached EUR rates",
            logger=fx_logger,
            host=rng.choice(PAYMENTS_HOSTS),
            version="2.14.0" if NEW_PODS_UP <= at < GOOD_FROM else "2.13.4",
        )
    for at in (_at("08:09:26.518"), _at("09:05:13.004"), _at("09:44:58.771")):
        payments_json(
            sample,
            at,
            "ERROR",
            "FX rate refresh failed: GET https://fx-rates.example.net/v2/latest?base=EUR returned 502; "
            f"request headers: Accept: application/json, Authorization: Bearer {token}",
            logger=fx_logger,
            host=rng.choice(PAYMENTS_HOSTS),
            version="2.14.0" if NEW_PODS_UP <= at < GOOD_FROM else "2.13.4",
        )
    # A test card in an error message (a synthetic user, before the incident): redaction must catch it.
    payments_json(
        sample,
        _at("08:21:37.640"),
        "ERROR",
        "Card verification failed for card 4111 1111 1111 1111: issuer simulator answered DO_NOT_HONOR",
        logger="com.example.bank.payments.card.CardVerifier",
        host="pay-02",
        version="2.13.4",
        extra={"user.id": "cust-00042", "trace.id": sample.hex_id(32)},
    )

    # ledger-service: one unrelated error with a trace long before the incident.
    ledger_log(
        sample,
        _at("08:18:02.719"),
        "ERROR",
        "c.e.bank.ledger.events.LedgerEventPublisher",
        "Failed to publish ledger event to topic ledger.postings, will retry",
        thread="kafka-producer-network-thread",
        trace_lines=[
            "org.apache.kafka.common.errors.TimeoutException: Expiring 3 record(s) for ledger.postings-2:120001 ms "
            "has passed since batch creation",
            "\tat org.apache.kafka.clients.producer.internals.RecordAccumulator.expiredBatches("
            "RecordAccumulator.java:381)",
            "\tat org.apache.kafka.clients.producer.internals.Sender.sendProducerData(Sender.java:384)",
            "\tat java.base/java.lang.Thread.run(Thread.java:833)",
        ],
    )

    # settlement-worker: an e-mail address (to redact), warnings, two unrelated errors.
    worker_log(sample, _at("08:02:05.117"), "INFO", "Settlement report for 2024-03-11 sent to alex.tester@example.com")
    for at in (_at("08:16:44.902"), _at("09:36:12.330")):
        worker_log(
            sample, at, "WARNING", "Reconciliation file CLEAR-20240312.csv not yet available from the clearing house"
        )
    worker_log(
        sample,
        _at("08:27:19.455"),
        "ERROR",
        "Upload of settlement file to sftp.clearing.example.net failed",
        traceback=[
            "Traceback (most recent call last):",
            '  File "/app/settlement/upload.py", line 41, in upload',
            "    sftp.put(local_path, remote_path)",
            '  File "/usr/local/lib/python3.11/site-packages/paramiko/sftp_client.py", line 759, in put',
            "    return self.putfo(fl, remotepath, file_size, callback, confirm)",
            "OSError: [Errno 28] No space left on device",
        ],
    )
    worker_log(
        sample, _at("09:51:03.611"), "ERROR", "Clearing house rejected file CLEAR-20240312.csv: duplicate batch id 8801"
    )


def alertmanager_payload(
    status: str, alerts: Sequence[dict[str, Any]], group_labels: dict[str, str], receiver: str
) -> dict[str, Any]:
    common = {key: value for key, value in alerts[0]["labels"].items()}
    return {
        "receiver": receiver,
        "status": status,
        "alerts": list(alerts),
        "groupLabels": group_labels,
        "commonLabels": common,
        "commonAnnotations": alerts[0]["annotations"],
        "externalURL": "http://alertmanager.monitoring.svc:9093",
        "version": "4",
        "groupKey": "{}:{" + ", ".join(f'{k}="{v}"' for k, v in group_labels.items()) + "}",
        "truncatedAlerts": 0,
    }


def generate_alerts(sample: Sample, onset: int, recovered: int) -> None:
    """DiskSpaceLow (unrelated, before onset) and HighErrorRate with its page, from the incident's times."""
    rng = sample.rng

    def alert(
        status: str, labels: dict[str, str], summary: str, starts: int, ends: int | None, fp: str
    ) -> dict[str, Any]:
        return {
            "status": status,
            "labels": labels,
            "annotations": {"summary": summary, "runbook_url": f"https://runbooks.example.com/{labels['alertname']}"},
            "startsAt": iso_go(starts),
            "endsAt": iso_go(ends) if ends is not None else "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus.monitoring.svc:9090/graph?g0.expr=" + labels["alertname"],
            "fingerprint": fp,
        }

    def emit(sent: int, event: int, payload: dict[str, Any], tag: str, service: str | None) -> None:
        sample.add(
            Record(
                file=ALERTMANAGER,
                time_ms=sent,
                event_ms=event,
                lines=[json.dumps(payload, separators=(",", ":"))],
                service=service,
                tag=tag,
                message=payload["alerts"][0]["annotations"]["summary"],
            )
        )

    disk = {
        "alertname": "DiskSpaceLow",
        "instance": "batch-01:9100",
        "job": "node",
        "mountpoint": "/var/lib/settlement",
        "severity": "warning",
    }
    disk_fp, disk_start, disk_end = sample.hex_id(16), _at("08:13:33.4"), _at("08:35:48.4")
    summary = "Filesystem /var/lib/settlement on batch-01 has less than 10% space left"
    emit(
        disk_start + 30_000,
        disk_start,
        alertmanager_payload(
            "firing",
            [alert("firing", disk, summary, disk_start, None, disk_fp)],
            {"alertname": "DiskSpaceLow"},
            "ops-slack",
        ),
        "disk:firing",
        None,
    )
    emit(
        disk_end + 30_000,
        disk_end,
        alertmanager_payload(
            "resolved",
            [alert("resolved", disk, summary, disk_start, disk_end, disk_fp)],
            {"alertname": "DiskSpaceLow"},
            "ops-slack",
        ),
        "disk:resolved",
        None,
    )

    # Prometheus evaluates every 30 s (at :02.117 and :32.117); the rule has `for: 2m`.
    tick = 2_117
    first_eval = onset + 30 * SECOND
    pending = first_eval + (tick - first_eval) % (30 * SECOND)
    fired = pending + 2 * MINUTE
    cleared = recovered + 4 * MINUTE
    resolved = cleared + (tick - cleared) % (30 * SECOND)
    labels = {
        "alertname": "HighErrorRate",
        "namespace": "payments",
        "service": "payments-api",
        "severity": "critical",
        "team": "payments",
    }
    summary = "payments-api: more than 5% of requests fail with 5xx (2m)"
    fp = sample.hex_id(16)
    group = {"alertname": "HighErrorRate", "service": "payments-api"}
    firing = alertmanager_payload(
        "firing", [alert("firing", labels, summary, fired, None, fp)], group, "payments-pagerduty"
    )
    emit(fired + 30_000, fired, firing, "high:firing", "payments-api")
    # repeat_interval is 5m for critical payments alerts: the same notification again.
    emit(fired + 30_000 + 5 * MINUTE, fired, firing, "high:repeat", "payments-api")
    done = alertmanager_payload(
        "resolved", [alert("resolved", labels, summary, fired, resolved, fp)], group, "payments-pagerduty"
    )
    emit(resolved + 30_000, resolved, done, "high:resolved", "payments-api")

    # PagerDuty, paged by Alertmanager's Events API integration.
    incident_id = "Q0PAYM3NTS1"
    triggered = fired + 31_000 + rng.randint(100, 900)
    acknowledged = triggered + 4 * MINUTE + 12_345
    pd_resolved = resolved + 32_000 + rng.randint(100, 900)

    def pd_event(event_type: str, at: int, status: str, agent: dict[str, Any] | None) -> dict[str, Any]:
        return {
            "event": {
                "id": f"01E{sample.hex_id(23).upper()}",
                "event_type": event_type,
                "resource_type": "incident",
                "occurred_at": iso_ms(at),
                "agent": agent,
                "client": {"name": "Alertmanager"} if agent is None else None,
                "data": {
                    "id": incident_id,
                    "type": "incident",
                    "self": f"https://api.pagerduty.com/incidents/{incident_id}",
                    "html_url": f"https://examplebank.pagerduty.com/incidents/{incident_id}",
                    "number": 4182,
                    "status": status,
                    "incident_key": fp,
                    "created_at": iso_go(_floor_s(triggered)),
                    "title": "[FIRING:1] HighErrorRate payments-api (critical)",
                    "service": {
                        "html_url": "https://examplebank.pagerduty.com/services/PPAYAPI",
                        "id": "PPAYAPI",
                        "self": "https://api.pagerduty.com/services/PPAYAPI",
                        "summary": "payments-api",
                        "type": "service_reference",
                    },
                    "assignees": [
                        {
                            "html_url": "https://examplebank.pagerduty.com/users/PONCALL1",
                            "id": "PONCALL1",
                            "self": "https://api.pagerduty.com/users/PONCALL1",
                            "summary": "Payments On-Call",
                            "type": "user_reference",
                        }
                    ],
                    "escalation_policy": {
                        "id": "PPAYESC",
                        "summary": "Payments",
                        "type": "escalation_policy_reference",
                    },
                    "teams": [{"id": "PTEAMPAY", "summary": "Payments SRE", "type": "team_reference"}],
                    "priority": {"id": "PPRIO1", "summary": "P1", "type": "priority_reference"},
                    "urgency": "high",
                    "resolve_reason": None,
                },
            }
        }

    oncall = {
        "html_url": "https://examplebank.pagerduty.com/users/PONCALL1",
        "id": "PONCALL1",
        "self": "https://api.pagerduty.com/users/PONCALL1",
        "summary": "Payments On-Call",
        "type": "user_reference",
    }
    for event_type, at, status, agent in (
        ("incident.triggered", triggered, "triggered", None),
        ("incident.acknowledged", acknowledged, "acknowledged", oncall),
        ("incident.resolved", pd_resolved, "resolved", None),
    ):
        sample.add(
            Record(
                file=PAGERDUTY,
                time_ms=at,
                lines=[json.dumps(pd_event(event_type, at, status, agent))],
                service="payments-api",
                tag=f"pd:{event_type.split('.')[1]}",
                message=event_type,
            )
        )


# --------------------------------------------------------------------------------------------------
# Writing and the truth


def build_records(seed: int = SEED) -> list[Record]:
    """Every record of the sample, in generation order, with their written times."""
    sample = Sample(random.Random(seed))
    generate_noise(sample)
    generate_changes(sample)
    generate_traffic(sample)
    generate_ledger_and_worker(sample)
    incident_errors = [r.when for r in sample.records if r.error and r.incident]
    generate_alerts(sample, min(incident_errors), max(incident_errors))
    return sample.records


def render_files(records: list[Record]) -> dict[str, bytes]:
    """The bytes of every file; sets each record's line number as a side effect."""
    by_file: dict[str, list[Record]] = {}
    for record in sorted(records, key=lambda r: (r.time_ms, r.order)):
        by_file.setdefault(record.file, []).append(record)
    out: dict[str, bytes] = {}
    for path, items in by_file.items():
        if path == PAGERDUTY:  # a JSON array of deliveries, indented as an export would be
            docs = [json.loads(r.lines[0]) for r in items]
            text = json.dumps(docs, indent=2) + "\n"
            lines = text.splitlines()
            starts = [i + 1 for i, line in enumerate(lines) if line == "  {"]
            for record, start in zip(items, starts, strict=True):
                record.line = start
            out[path] = text.encode()
            continue
        body: list[str] = []
        for record in items:
            record.line = len(body) + 1
            body.extend(record.lines)
        data = ("\n".join(body) + "\n").encode()
        if path.endswith(".gz"):
            buffer = io.BytesIO()
            # mtime=0 and no file name: the archive is byte-identical on every run.
            with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, mtime=0, compresslevel=9) as archive:
                archive.write(data)
            data = buffer.getvalue()
        out[path] = data
    return out


def _evidence(record: Record) -> dict[str, Any]:
    return {"file": record.file, "line": record.line, "time": iso_truth(record.when), "message": record.message[:200]}


def compute_truth(records: list[Record], files: dict[str, bytes]) -> dict[str, Any]:
    """The true phases and impact, from the records, with the definitions of issue 4 (items 3 and 5)."""
    incident_errors = sorted((r for r in records if r.error and r.incident), key=lambda r: (r.when, r.order))
    onset_rec, recovered_rec = incident_errors[0], incident_errors[-1]
    onset, recovered = onset_rec.when, recovered_rec.when

    def tagged(tag: str) -> list[Record]:
        return sorted((r for r in records if r.tag == tag), key=lambda r: (r.when, r.order))

    detected_rec = tagged("high:firing")[0]
    mitigated_rec = tagged("rollback")[0]
    resolved_rec = tagged("high:resolved")[0]
    deploy_rec = tagged("deploy")[0]
    phases = {
        "onset": onset_rec,
        "detected": detected_rec,
        "mitigated": mitigated_rec,
        "recovered": recovered_rec,
        "resolved": resolved_rec,
    }

    inside = [r for r in records if onset <= r.when <= recovered]
    edge = [r for r in inside if r.edge_status is not None]
    errors = [r for r in inside if r.error]  # log and request events; alert payloads never set error
    buckets: dict[int, list[int]] = {}
    for r in records:
        if r.edge_status is not None:
            counts = buckets.setdefault(r.when // MINUTE, [0, 0])
            counts[0] += 1
            counts[1] += r.edge_status >= 500
    peak_bucket, (peak_total, peak_failed) = max(buckets.items(), key=lambda kv: (kv[1][1] / kv[1][0], -kv[0]))
    background = [r for r in records if r.error and not r.incident]

    def seconds(ms: int) -> float:
        return round((ms - onset) / 1000, 3)

    per_file: dict[str, dict[str, Any]] = {}
    for path in sorted(files):
        data = files[path]
        text = gzip.decompress(data) if path.endswith(".gz") else data
        items = [r for r in records if r.file == path]
        fmt, zone, service = FILES[path]
        per_file[path] = {
            "format": fmt,
            "time_zone": zone,
            "service": service,
            "bytes": len(data),
            "lines": text.count(b"\n"),
            "records": len(items),
            "continuation_lines": sum(len(r.lines) - 1 for r in items) if path != PAGERDUTY else 0,
            "error_records": sum(r.error for r in items),
        }
    return {
        "schema_version": 1,
        "title": "payments-api v2.14.0 exhausts db-primary connections; payments fail until rollback",
        "window": {"start": iso_truth(WINDOW_START), "end": iso_truth(WINDOW_END)},
        "source_tz": [["*ledger.log", "Europe/Amsterdam"]],
        "phases": {name: iso_truth(record.when) for name, record in phases.items()},
        "phase_evidence": {name: _evidence(record) for name, record in phases.items()},
        "metrics": {
            "time_to_detect_s": seconds(detected_rec.when),
            "time_to_mitigate_s": seconds(mitigated_rec.when),
            "time_to_recover_s": seconds(recovered),
            "time_to_resolve_s": seconds(resolved_rec.when),
            "requests_total": len(edge),
            "requests_failed": sum(r.edge_status is not None and r.edge_status >= 500 for r in edge),
            "error_rate_peak": round(peak_failed / peak_total, 4),
            "error_rate_peak_bucket": iso_truth(peak_bucket * MINUTE),
            "error_events": len(errors),
            "incident_error_events": sum(r.incident for r in errors),
            # Alert and page state changes (a repeated notification counts once): not error events,
            # but a tool that counts critical alerts as errors adds these to error_events.
            "alert_events": sum(r.file in (ALERTMANAGER, PAGERDUTY) and r.tag != "high:repeat" for r in inside),
            "affected_users": len({r.user for r in errors if r.user}),
            "affected_services": sorted({r.service for r in errors if r.service}),
            "affected_hosts": sorted({r.host for r in errors if r.host}),
        },
        "root_cause": {
            "kind": "change",
            "change_type": "deploy",
            "service": "payments-api",
            "time": iso_truth(deploy_rec.when),
            "summary": "deploy of payments-api v2.14.0 (HikariCP maximumPoolSize 20 -> 200 per pod) exhausted "
            "the connections of db-primary",
            "evidence": [_evidence(r) for r in tagged("deploy")],
        },
        "detection_alert": {
            "name": "HighErrorRate",
            "service": "payments-api",
            "fired": iso_truth(detected_rec.when),
            "resolved": iso_truth(resolved_rec.when),
            "notifications": len(tagged("high:firing")) + len(tagged("high:repeat")) + len(tagged("high:resolved")),
            "duplicate_notifications": len(tagged("high:repeat")),
        },
        "page": {
            state: iso_truth(tagged(f"pd:{state}")[0].when) for state in ("triggered", "acknowledged", "resolved")
        },
        "noise": {
            "earlier_alert": {
                "name": "DiskSpaceLow",
                "host": "batch-01",
                "fired": iso_truth(tagged("disk:firing")[0].when),
                "resolved": iso_truth(tagged("disk:resolved")[0].when),
            },
            "earlier_restart": {"host": "batch-01", "service": "fluent-bit", "time": iso_truth(_at("08:06:40"))},
            "earlier_change": {"service": "accounts-service", "time": iso_truth(_at("08:20:11"))},
            "background_error_events": len(background),
            "background_error_times": [iso_truth(r.when) for r in sorted(background, key=lambda r: r.when)],
        },
        "files": per_file,
        "total_lines": sum(entry["lines"] for entry in per_file.values()),
    }


def _fmt_duration(seconds: float) -> str:
    whole = round(seconds)
    return f"{whole // 60} min {whole % 60:02d} s"


def render_readme(truth: dict[str, Any]) -> str:
    """The sample's README: the story, the files, the options, and the facts of ``truth``."""
    phases, metrics, noise = truth["phases"], truth["metrics"], truth["noise"]
    evidence = truth["phase_evidence"]
    file_rows = "\n".join(
        f"| `{path}` | {entry['format']} | {entry['time_zone']} | {entry['service']} | {entry['lines']} |"
        for path, entry in truth["files"].items()
    )
    phase_rows = "\n".join(
        f"| {name} | `{phases[name]}` | `{evidence[name]['file']}` line {evidence[name]['line']} |"
        for name in ("onset", "detected", "mitigated", "recovered", "resolved")
    )
    background = ", ".join(f"`{t}`" for t in noise["background_error_times"])
    return f"""# Sample incident: payments fail after a deploy exhausts database connections

A synthetic but realistic outage at a bank, used by the quick start, the tests and the docs. Every
file and every fact below is written by `bench/make_sample_incident.py` from a fixed seed
(`python bench/make_sample_incident.py` regenerates this folder byte for byte); the facts are computed
from the generated records, not typed by hand, and are also in machine-readable form in
[`truth.json`](truth.json). All people, accounts, addresses, cards and secrets are synthetic.

## What happened

On Tuesday 12 March 2024 (times in UTC; Amsterdam is UTC+1), between 08:00 and 10:00:

1. Background: cron jobs, SSH logins, a vulnerability scanner producing 404s at the edge, a flaky
   FX-rate provider (warnings, rare errors), a few unrelated errors. At 08:06:40 `fluent-bit` is
   restarted by systemd on `batch-01` (unrelated), at 08:13 `DiskSpaceLow` fires for `batch-01` and
   resolves at 08:35, and at 08:20 Argo CD deploys `accounts-service` v5.2.2 (unrelated, healthy).
2. At `{truth["root_cause"]["time"]}` Argo CD starts deploying **payments-api v2.14.0**. The release
   raises HikariCP's `maximumPoolSize` from 20 to 200 per pod; with three pods that is 600 connections
   against `db-primary`'s `max_connections=400`, which payments-api, ledger-service and the
   settlement worker share.
3. Minutes later PostgreSQL refuses new clients (`FATAL: sorry, too many clients already`). From
   **{phases["onset"]}** (onset) payment requests fail: payments-api waits 30 s for a connection and
   answers 503 (nginx sometimes gives up first with 504), or ledger-service does not answer within
   5 s and payments-api answers 500. ledger-service logs `SQLTransientConnectionException` traces;
   the settlement worker's batches fail with `psycopg2.OperationalError`.
4. `HighErrorRate` (payments-api) fires at **{phases["detected"]}** (detected) and pages PagerDuty;
   Alertmanager repeats the firing notification 5 minutes later (a duplicate). The on-call engineer
   acknowledges at {truth["page"]["acknowledged"]}.
5. At **{phases["mitigated"]}** (mitigated) the on-call engineer rolls payments-api back to v2.13.4
   with Argo CD. The pods are replaced, connections are freed, and the last error of the incident is
   logged at **{phases["recovered"]}** (recovered).
6. `HighErrorRate` resolves at **{phases["resolved"]}** (resolved); PagerDuty resolves the incident at
   {truth["page"]["resolved"]}.

One failing request can be followed across services: nginx's trailing request id is payments-api's
`trace.id`/`http.request.id` and ledger-service's Sleuth trace id.

## Files

| file | format | time zone | service named by | lines |
|---|---|---|---|---|
{file_rows}

Total: {truth["total_lines"]} lines. `ledger/ledger.log` is written in naive local time
(Europe/Amsterdam); every other naive source (`workers/`, `hosts/`) is UTC, so the default zone
fits them. Give the ledger's zone explicitly:

```sh
pmtimeline build sample_logs -o out {SOURCE_TZ_OPTION}
```

Without that option the ledger's events land one hour late (read as UTC), which is a good way to
see why the option exists. The syslog files have no year; it is inferred from the other sources
(2024).

## True facts

Definitions (issue 4): an *error event* is a log or request event of level error or worse, or with
HTTP status >= 500 (alert payloads are not counted); onset and recovered are the first and last
error events of the incident; requests are counted at the edge (`edge/nginx_access.log`) within
[onset, recovered], both ends included, at the times as written (nginx writes whole seconds).

| phase | time (UTC) | evidence |
|---|---|---|
{phase_rows}

| metric | value |
|---|---|
| time to detect | {metrics["time_to_detect_s"]} s ({_fmt_duration(metrics["time_to_detect_s"])}) |
| time to mitigate | {metrics["time_to_mitigate_s"]} s ({_fmt_duration(metrics["time_to_mitigate_s"])}) |
| time to recover (impact duration) | {metrics["time_to_recover_s"]} s ({_fmt_duration(metrics["time_to_recover_s"])}) |
| time to resolve | {metrics["time_to_resolve_s"]} s ({_fmt_duration(metrics["time_to_resolve_s"])}) |
| requests_total (edge, [onset, recovered]) | {metrics["requests_total"]} |
| requests_failed (status >= 500) | {metrics["requests_failed"]} |
| error_rate_peak (1-minute buckets, edge) | {metrics["error_rate_peak"]} (bucket {metrics["error_rate_peak_bucket"]}) |
| error_events in [onset, recovered] | {metrics["error_events"]} ({metrics["incident_error_events"]} of the incident) |
| alert and page state changes in [onset, recovered] (not error events) | {metrics["alert_events"]} |
| affected_users (`user.id` on error events) | {metrics["affected_users"]} |
| affected_services | {", ".join(metrics["affected_services"])} |
| affected_hosts (`host.name` on error events) | {", ".join(metrics["affected_hosts"])} |
| root cause | deploy of payments-api v2.14.0 at {truth["root_cause"]["time"]} (`deploy/argocd.logfmt`) |

## Noise, so nobody mistakes it for the incident

- Background error events: {noise["background_error_events"]} in two hours ({background}); none within
  ten minutes before onset or after recovery. One of them (the FX provider) falls inside the incident
  and is counted in `error_events` above, as the definition says.
- `DiskSpaceLow` on `batch-01` fires at {noise["earlier_alert"]["fired"]} and resolves at
  {noise["earlier_alert"]["resolved"]}, before onset: it is not the detection.
- The restart of `fluent-bit` on `batch-01` at {noise["earlier_restart"]["time"]} and the deploy of
  `accounts-service` at {noise["earlier_change"]["time"]} are changes in services that did not fail.
- The scanner's 404/403 responses and the FX-rate warnings are not errors.

## Values that redaction must hide

A test card number (`4111 1111 1111 1111`) in a payments-api error, an e-mail address in the
settlement worker's log, a bearer token in a logged request header (FX errors), and a password in a
JDBC URL (`jdbc:postgresql://payments:<password>@db-primary...`, payments-api start-up lines).
"""


def write_sample(out: Path, seed: int = SEED) -> dict[str, Any]:
    """Write every file, ``truth.json`` and ``README.md`` into ``out``; return the truth."""
    records = build_records(seed)
    files = render_files(records)
    truth = compute_truth(records, files)
    for path, data in files.items():
        target = out / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    (out / "truth.json").write_text(json.dumps(truth, indent=2) + "\n", encoding="utf-8")
    (out / "README.md").write_text(render_readme(truth), encoding="utf-8")
    return truth


def main(argv: Sequence[str] | None = None, *, log: Callable[[str], None] = print) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "sample_logs")
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args(argv)
    truth = write_sample(args.out, args.seed)
    for path, entry in truth["files"].items():
        log(f"{path:32} {entry['lines']:>6} lines {entry['bytes']:>9} bytes")
    log(f"phases: {json.dumps(truth['phases'])}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
