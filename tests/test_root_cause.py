"""Root-cause candidates as a causal story: the trigger first (a change, or an external trigger named by
the errors' words or the traffic), its new errors and the mechanism as its evidence, noise apart.

The shapes here are unlike the bundled sample: an expired certificate with no change, a deploy logged
by a deploy tool about another service, a quota, memory exhaustion, an unreachable dependency, a
traffic surge, routine restarts; each generated with its truth. The sample itself is checked last.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import pandas as pd
import pytest
from conftest import SAMPLE_LOGS
from synthetic_incidents import T0, Synthetic, _frame, _seconds, _single, finish, make_events, outage

import pmtimeline.aggregate as aggregate_module
from pmtimeline.aggregate import Aggregates, aggregate, error_mask
from pmtimeline.analysis import analyze
from pmtimeline.api import load
from pmtimeline.changes import classify_changes
from pmtimeline.config import TimelineConfig
from pmtimeline.correlate import correlation_ids
from pmtimeline.incident import MAX_SHOWN, Incident, duration_words
from pmtimeline.root_cause import find_mechanism, rank_root_causes
from pmtimeline.signatures import SIGNATURE_BY_NAME, signatures_of
from pmtimeline.sources import SourceAccounting
from pmtimeline.templates import message_templates

CONFIG = TimelineConfig()


@cache
def data() -> tuple[Synthetic, Aggregates]:
    synthetic = outage(51, minutes=75)
    return synthetic, aggregate(classify_changes(synthetic.events), CONFIG)


# --------------------------------------------------------------------------------------------------
# shapes unlike the sample


def shape(
    seed: int,
    *,
    service: str = "checkout",
    errors: tuple[str, ...] = (),
    stack: str | None = None,
    changes: tuple[tuple[float, str | None, str, str], ...] = (),
    surge: float = 1.0,
    minutes: int = 60,
    onset_minute: int = 35,
    fail_minutes: int = 12,
    rate: float = 40.0,
    change_host: str | None = None,
) -> tuple[pd.DataFrame, pd.Timestamp]:
    """A window of one service's traffic (an access log at the edge, app errors in JSON logs).

    From ``onset_minute`` on, for ``fail_minutes``, a third of the requests fail with 502 and the app
    logs one of ``errors`` for each (with ``stack`` in its ``fields`` when given, as ECS writes
    ``error.stack_trace``); ``surge`` multiplies the request rate then. ``changes`` are (minute, service,
    source, message) lines. Background errors of another service run all along.
    """
    rng = np.random.default_rng(seed)
    onset = T0 + pd.Timedelta(minutes=onset_minute)
    end = T0 + pd.Timedelta(minutes=minutes)
    fail_end = onset + pd.Timedelta(minutes=fail_minutes)
    parts = []
    for start, stop, per_min in ((T0, onset, rate), (onset, fail_end, rate * surge), (fail_end, end, rate)):
        n = int(per_min * (stop - start).total_seconds() / 60)
        times = _seconds(rng, start, stop, n)
        failing = (start == onset) & (rng.random(n) < 0.35)
        if start == onset:
            failing[0] = True
        trace = np.array([f"{seed:03x}{start.minute:02x}{i:08x}" for i in range(n)])
        parts.append(
            _frame(
                n,
                times,
                source="edge/access.log",
                format="access_combined",
                host="lb-1",
                service="edge",
                kind="request",
                message="request",
                http_status=np.where(failing, 502, 200),
                http_method="GET",
                url_path="/api/cart",
                level=np.where(failing, "error", "info"),
                trace_id=trace,
            )
        )
        if failing.any() and errors:
            k = int(failing.sum())
            messages = np.array(errors, dtype=object)[rng.integers(0, len(errors), k)]
            fields = None if stack is None else '{"error.stack_trace":"' + stack.replace("\n", "\\n") + '"}'
            parts.append(
                _frame(
                    k,
                    times[failing],
                    source=f"{service}/app.jsonl",
                    format="json_lines",
                    host=f"{service}-1",
                    service=service,
                    kind="log",
                    level="error",
                    message=messages,
                    trace_id=trace[failing],
                    fields=fields,
                )
            )
    nb = minutes // 4
    parts.append(
        _frame(
            nb,
            _seconds(rng, T0, end, nb),
            source="reports/worker.log",
            format="logfmt",
            host="reports-1",
            service="reports",
            level="error",
            message="report job failed with code 7",
        )
    )
    for minute, svc, source, message in changes:
        parts.append(
            _single(
                T0 + pd.Timedelta(minutes=minute),
                source=source,
                format="logfmt",
                service=svc,
                level="info",
                message=message,
                host=change_host,
            )
        )
    events = finish(parts)
    first = events.loc[error_mask(events) & (events["timestamp"] >= onset).to_numpy(), "timestamp"].min()
    return classify_changes(events), first


def incident_of(events: pd.DataFrame) -> Incident:
    return analyze(aggregate(events, CONFIG), [SourceAccounting(name="test")], CONFIG)


def shown(incident: Incident) -> list[str]:
    return [f"{c.kind}:{c.trigger}" for c in incident.root_cause_candidates if not c.noise]


def test_an_expired_certificate_without_a_change_is_the_trigger() -> None:
    events, onset = shape(
        3,
        errors=("call to payments-gateway failed",),
        stack="javax.net.ssl.SSLHandshakeException: PKIX path validation failed: "
        "java.security.cert.CertPathValidatorException: validity check failed\n"
        "Caused by: java.security.cert.CertificateExpiredException: NotAfter: Thu Feb 29 23:59:59 UTC 2024",
        # A deploy of an unrelated service long before: noise, not a candidate.
        changes=((5, "search", "deploy/ci.log", "Deployed search v1.8.0 to production"),),
    )
    incident = incident_of(events)
    assert incident.phases["onset"] == onset
    top = incident.root_cause_candidates[0]
    assert (top.kind, top.trigger) == ("external", "certificate_expiry")
    assert top.evidence
    assert "PKIX path validation failed" in top.evidence[0].message
    assert incident.mechanism is not None
    assert incident.mechanism.signature == "certificate_expired"
    failing = events.loc[error_mask(events) & (events["service"] == "checkout").to_numpy()]
    assert incident.mechanism.count == len(failing)
    search = next(c for c in incident.root_cause_candidates if c.service == "search")
    assert search.noise
    assert "did not fail" in search.why
    actions = " ".join(a.action for a in incident.action_items)
    assert "certificate expiry" in actions


def test_a_deploy_logged_by_a_deploy_tool_about_the_failing_service_outranks_its_symptoms() -> None:
    events, _ = shape(
        5,
        service="checkout-api",
        errors=("could not obtain a database connection", "cart lookup failed: could not obtain a database connection"),
        stack="org.springframework.jdbc.CannotGetJdbcConnectionException: Failed to obtain JDBC Connection\n"
        "Caused by: org.postgresql.util.PSQLException: FATAL: remaining connection slots are reserved",
        # The deploy tool logs it, naming the target: the change belongs to checkout-api.
        changes=(
            (33, "checkout-api", "deploy/spinnaker.log", "Deploying checkout-api version 3.2.0"),
            (20, "fluent-bit", "hosts/syslog", "Restarted fluent-bit.service"),
        ),
    )
    incident = incident_of(events)
    top = incident.root_cause_candidates[0]
    assert (top.kind, top.service, top.trigger) == ("change", "checkout-api", "deploy")
    assert top.evidence[0].source == "deploy/spinnaker.log"
    # The symptoms are its evidence, counted exactly, not candidates of their own.
    assert top.new_errors
    errors = events.loc[error_mask(events) & (events["service"] == "checkout-api").to_numpy(), "message"]
    for new in top.new_errors:
        assert new.count == int((errors == new.template).sum())
    assert not any(c.kind == "new_error_template" for c in incident.root_cause_candidates)
    assert incident.mechanism is not None
    assert incident.mechanism.signature == "db_connections_exhausted"
    assert incident.mechanism.count == len(errors)
    assert "remaining connection slots are reserved" in incident.mechanism.first.message
    assert incident.mechanism.first in top.evidence
    restart = next(c for c in incident.root_cause_candidates if c.service == "fluent-bit")
    assert restart.noise
    types = {(a.type, a.priority) for a in incident.action_items}
    assert ("prevent", "P1") in types  # pool sizing against max_connections, and a canary
    assert any("max_connections" in a.action for a in incident.action_items)
    assert any("canary" in a.action for a in incident.action_items)


def test_durations_read_as_the_draft_writes_them_and_signatures_are_searched_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A deploy two minutes before onset reads "2 min before onset" (``duration_words``, as every
    duration of the draft), never "2 min 0 s"; the notable events' signatures are searched once per
    analysis, however many signatures the mechanism and the external triggers look up."""
    events, onset = shape(
        5,
        service="checkout-api",
        errors=("could not obtain a database connection",),
        stack="javax.net.ssl.SSLHandshakeException: PKIX path validation failed\n"
        "Caused by: org.postgresql.util.PSQLException: FATAL: remaining connection slots are reserved",
        changes=((33, "checkout-api", "deploy/spinnaker.log", "Deploying checkout-api version 3.2.0"),),
    )
    aggregates = aggregate(events, CONFIG)
    calls: list[int] = []
    searched = aggregate_module.signatures_of
    monkeypatch.setattr(aggregate_module, "signatures_of", lambda frame: calls.append(len(frame)) or searched(frame))
    incident = analyze(aggregates, [SourceAccounting(name="test")], CONFIG)
    assert len(calls) == 1
    top = incident.root_cause_candidates[0]
    age = (onset - top.time).total_seconds()
    assert age == 120
    assert f"{duration_words(age)} before onset" in top.summary
    assert "2 min before onset" in top.summary
    # Both signatures were looked up: the certificate as an external trigger, the connections as the mechanism.
    assert any(c.trigger == "certificate_expiry" for c in incident.root_cause_candidates)
    assert incident.mechanism is not None


@pytest.mark.parametrize(("host", "aimed"), [("orders-1", True), ("batch-7", False)])
def test_a_destructive_command_on_the_failing_host_is_the_trigger(host: str, aimed: bool) -> None:
    """Issue 15: a recursive rm typed through sudo on the host where the failure begins is that
    service's change, and the trigger; the same command on another host is not aimed at it."""
    events, _ = shape(
        17,
        service="orders",
        errors=('PANIC: could not open file "global/pg_control": No such file or directory',),
        changes=(
            (34.5, "sudo", "db/auth.log", "ops : TTY=pts/1 ; USER=root ; COMMAND=/bin/rm -fr /srv/pgdata/base"),
            (10, "search", "deploy/ci.log", "Deployed search v2.0.0 to production"),
        ),
        change_host=host,
    )
    incident = incident_of(events)
    command = next(c for c in incident.root_cause_candidates if c.trigger == "destructive")
    assert command.evidence[0].source == "db/auth.log"
    if aimed:
        assert command.rank == 1
        assert command.service == "orders"
        assert f"host {host}" in command.why
        assert "logged by sudo" in command.summary
    else:
        assert command.rank > 1
        assert command.service == "sudo"


def test_a_change_that_names_no_service_still_outranks_the_symptoms() -> None:
    events, _ = shape(
        7,
        errors=("Too many open files",),
        changes=((32, None, "deploy/ansible.log", "Applied config change: worker_connections 4096"),),
    )
    incident = incident_of(events)
    top = incident.root_cause_candidates[0]
    assert (top.kind, top.service, top.trigger) == ("change", None, "config")
    assert "names no service" in top.why
    assert incident.mechanism is not None
    assert incident.mechanism.signature == "file_descriptors"
    assert any("file-descriptor limit" in a.action for a in incident.action_items)


@pytest.mark.parametrize(
    ("message", "trigger", "signature", "guard"),
    [
        ("upload failed: RequestLimitExceeded: Request limit exceeded.", "quota", "quota_exceeded", "quota"),
        (
            "worker crashed: java.lang.OutOfMemoryError: Java heap space",
            "resource_exhaustion",
            "memory_exhausted",
            "memory",
        ),
        (
            "GET inventory failed: dial tcp 10.1.2.3:5432: connect: connection refused",
            "dependency_outage",
            "dependency_unreachable",
            "circuit breaker",
        ),
    ],
)
def test_external_triggers_are_recognized_by_their_words(
    message: str, trigger: str, signature: str, guard: str
) -> None:
    events, _ = shape(11, service="ingest", errors=(message,))
    incident = incident_of(events)
    top = incident.root_cause_candidates[0]
    assert (top.kind, top.trigger) == ("external", trigger)
    assert incident.mechanism is not None
    assert incident.mechanism.signature == signature
    assert incident.mechanism.before_onset == 0
    assert any(guard in a.action for a in incident.action_items)


def test_a_traffic_surge_is_recognized_from_the_counts() -> None:
    events, _ = shape(13, errors=("upstream timed out",), surge=6.0)
    incident = incident_of(events)
    surge = next(c for c in incident.root_cause_candidates if c.trigger == "traffic_surge")
    assert surge.rank == 1
    assert "x the median" in surge.summary
    # Its example line is a request of the peak minute; the item it brings cites it.
    (example,) = surge.evidence
    assert example.kind == "request"
    assert surge.time is not None
    assert surge.time <= example.time < surge.time + pd.Timedelta(CONFIG.bucket)
    (item,) = [a for a in incident.action_items if "Load-test" in a.action]
    assert item.evidence == (example,)


def test_words_seen_before_onset_are_the_background() -> None:
    # "connection refused" all along, at the same rate as during the incident: no trigger in it.
    records = [
        {"time": f"2024-03-05T08:{m:02d}:00Z", "service": "api", "level": "error", "message": "connection refused"}
        for m in range(0, 59, 2)
    ]
    events = make_events(records)
    aggregates = aggregate(events, CONFIG)
    phases = {"onset": pd.Timestamp("2024-03-05T08:40:00Z"), "recovered": pd.Timestamp("2024-03-05T08:50:00Z")}
    assert find_mechanism(aggregates, phases, CONFIG) is None
    candidates = rank_root_causes(aggregates, phases, "errors", ("api",), CONFIG)
    assert not any(c.kind == "external" for c in candidates)


def test_at_most_five_are_shown_and_the_rest_are_noise() -> None:
    changes = tuple((20 + i * 2, "checkout", "deploy/ci.log", f"Deployed checkout v1.{i}.0") for i in range(8))
    events, _ = shape(17, errors=("payment failed",), changes=changes)
    incident = incident_of(events)
    candidates = incident.root_cause_candidates
    assert [c.rank for c in candidates] == list(range(1, len(candidates) + 1))
    assert len(shown(incident)) <= MAX_SHOWN
    assert len(candidates) > MAX_SHOWN
    assert all(c.why for c in candidates)
    assert [c.noise for c in candidates] == sorted(c.noise for c in candidates)


# --------------------------------------------------------------------------------------------------
# the outage generator of synthetic_incidents


def test_candidates_are_ranked_with_the_deploy_first() -> None:
    synthetic, aggregates = data()
    candidates = rank_root_causes(aggregates, synthetic.truth.phases(), "errors", ("payments", "edge"), CONFIG)
    assert [c.rank for c in candidates] == list(range(1, len(candidates) + 1))
    shown_scores = [c.score for c in candidates if not c.noise]
    assert shown_scores == sorted(shown_scores, reverse=True)
    top = candidates[0]
    assert (top.kind, top.service, top.time) == ("change", "payments", synthetic.truth.cause_time)
    assert "Deployed payments" in top.evidence[0].message
    restart = next(c for c in candidates if c.kind == "change" and c.service == "reports")
    assert restart.noise
    assert restart.score < 0.5 * top.score


def test_new_errors_after_the_deploy_are_its_evidence() -> None:
    synthetic, aggregates = data()
    candidates = rank_root_causes(aggregates, synthetic.truth.phases(), "errors", ("payments", "edge"), CONFIG)
    top = candidates[0]
    templates = " ".join(n.template for n in top.new_errors)
    assert "Connection is not available" in templates
    assert "scheduled job reconcile failed" not in templates  # background errors are not new
    assert all(n.evidence.time >= top.evidence[0].time for n in top.new_errors)
    assert not any(c.kind == "new_error_template" for c in candidates)


def test_first_failing_service_follows_traces_past_the_edge() -> None:
    synthetic, aggregates = data()
    candidates = rank_root_causes(aggregates, synthetic.truth.phases(), "errors", ("payments", "edge"), CONFIG)
    origin = next(c for c in candidates if c.kind == "first_failing_service")
    assert origin.service == "payments"
    assert {e.service for e in origin.evidence} >= {"payments"}
    # A place, not a cause: below the trigger.
    assert origin.rank > 1


def test_without_a_trigger_new_errors_and_the_origin_are_the_leads() -> None:
    events = make_events(
        [
            {"time": "2024-03-05T08:00:00Z", "service": "db", "level": "error", "message": "checkpoint stalled"},
            {"time": "2024-03-05T08:00:05Z", "service": "api", "level": "error", "message": "query failed"},
            {"time": "2024-03-05T08:00:09Z", "service": "db", "level": "error", "message": "checkpoint stalled"},
        ]
    )
    aggregates = aggregate(events, CONFIG)
    phases = {"onset": pd.Timestamp("2024-03-05T08:00:00Z"), "recovered": pd.Timestamp("2024-03-05T08:00:09Z")}
    candidates = rank_root_causes(aggregates, phases, "errors", ("db", "api"), CONFIG)
    origin = next(c for c in candidates if c.kind == "first_failing_service")
    assert origin.service == "db"
    assert "db, api" in origin.summary
    assert {c.kind for c in candidates} == {"first_failing_service", "new_error_template"}


def test_no_onset_no_candidates() -> None:
    _, aggregates = data()
    assert rank_root_causes(aggregates, {"onset": None}, None, (), CONFIG) == ()
    assert find_mechanism(aggregates, {"onset": None}, CONFIG) is None


def test_counts_and_votes_stay_exact_when_few_errors_are_kept_whole() -> None:
    # A busy outage: tens of failing requests per second, so only a bounded choice of the errors is
    # kept whole; the candidates' counts must still be those of every event.
    synthetic = outage(53, minutes=30, rate_per_min=2500, onset_minute=8)
    events = classify_changes(synthetic.events)
    aggregates = aggregate(events, CONFIG)
    errors = events.loc[error_mask(events)]
    assert len(aggregates.notable.loc[error_mask(aggregates.notable)]) < 0.5 * len(errors)
    phases = synthetic.truth.phases()
    onset, recovered = phases["onset"], phases["recovered"]
    assert onset is not None
    assert recovered is not None
    mechanism = find_mechanism(aggregates, phases, CONFIG)
    candidates = rank_root_causes(aggregates, phases, "errors", ("payments", "edge"), CONFIG, mechanism=mechanism)

    # The new errors after the deploy: counted over every error of the incident.
    t = errors["timestamp"]
    during = errors.loc[((t >= onset) & (t <= recovered)).to_numpy()]
    top = candidates[0]
    assert top.new_errors
    templates = message_templates(during["message"])
    for new in top.new_errors:
        assert new.count == int((templates == new.template).sum())

    # The mechanism (an exhausted pool, the only signature here): every error that names it.
    assert mechanism is not None
    assert mechanism.signature == "connection_pool_exhausted"
    named = signatures_of(during[["message", "fields"]]) == "connection_pool_exhausted"
    assert mechanism.count == int(named.sum())

    # First failing service: votes over every failing request followed across services.
    width = pd.Timedelta(CONFIG.bucket)
    window = errors.loc[((t >= onset - width) & (t <= recovered)).to_numpy()].dropna(subset=["service"])
    traced = window.assign(cid=correlation_ids(window)).dropna(subset=["cid"])
    multi = traced.loc[traced.groupby("cid")["service"].transform("nunique").to_numpy() >= 2]
    edge = multi["format"].str.startswith("access").fillna(False)
    origins = multi.assign(_edge=edge).sort_values(["cid", "_edge", "timestamp"], kind="stable").drop_duplicates("cid")
    votes = origins["service"].value_counts()
    origin = next(c for c in candidates if c.kind == "first_failing_service")
    assert origin.service == votes.index[0] == "payments"
    assert f"{votes.iloc[0]} of {votes.sum()} failing requests" in origin.summary
    # Its evidence is one whole request: its errors (up to four), in time order, as every event has them.
    first = origin.evidence[0]
    row = window.loc[(window["timestamp"] == first.time) & (window["source"] == first.source)]
    row = row.loc[row["line"] == first.line]
    cid = correlation_ids(row).iloc[0]
    request = traced.loc[traced["cid"] == cid].sort_values("timestamp", kind="stable").head(4)
    assert [(e.source, e.line) for e in origin.evidence] == list(zip(request["source"], request["line"], strict=True))


def test_one_selection_of_traced_events_serves_dependencies_and_origin() -> None:
    # rank_root_causes selects the traced events once, from one bucket before onset; from onset on,
    # that selection is the one the dependencies are found in.
    from pmtimeline.root_cause import _dependencies, _traced

    synthetic, aggregates = data()
    onset, recovered = synthetic.truth.onset, synthetic.truth.recovered
    assert onset is not None
    assert recovered is not None
    # Any earlier start: the window's, so that the selection holds events before onset.
    assert aggregates.window_start is not None
    wide = _traced(aggregates, CONFIG, aggregates.window_start, recovered)
    narrow = _traced(aggregates, CONFIG, onset, recovered)
    since_onset = wide.loc[(wide["timestamp"] >= onset).to_numpy(dtype=bool)].reset_index(drop=True)
    assert len(since_onset) == len(narrow) < len(wide)
    for column in ("timestamp", "cid", "service", "error"):
        assert since_onset[column].astype(str).tolist() == narrow[column].astype(str).tolist()
    for services in (("payments", "edge"), ("edge",)):
        assert _dependencies(since_onset, services) == _dependencies(narrow, services)
    assert _dependencies(narrow, ("edge",)) == {"payments"}


def test_signatures_pick_the_first_of_message_and_fields() -> None:
    events = make_events(
        [
            {"time": "2024-03-05T08:00:00Z", "message": "could not obtain a database connection"},
            {
                "time": "2024-03-05T08:00:01Z",
                "message": "could not obtain a database connection",
                "fields": '{"error.stack_trace":"x\\nCaused by: PSQLException: FATAL: sorry, too many clients"}',
            },
            {"time": "2024-03-05T08:00:02Z", "message": "all good"},
        ]
    )
    found = signatures_of(events).fillna("none").tolist()
    assert found == ["connection_pool_exhausted", "db_connections_exhausted", "none"]
    assert all(s.pattern for s in SIGNATURE_BY_NAME.values())


# --------------------------------------------------------------------------------------------------
# the bundled sample


@cache
def sample() -> Incident:
    return load(str(SAMPLE_LOGS), source_tz={"*ledger.log": "Europe/Amsterdam"}).incident


def test_the_sample_deploy_is_candidate_one_with_the_mechanism_named() -> None:
    incident = sample()
    top = incident.root_cause_candidates[0]
    assert (top.kind, top.service, top.trigger) == ("change", "payments-api", "deploy")
    assert top.time == pd.Timestamp("2024-03-12T08:49:30Z")
    assert [(e.source.rsplit("sample_logs/", 1)[-1], e.line) for e in top.evidence[:2]] == [
        ("deploy/argocd.logfmt", 11),
        ("payments/payments-api.jsonl", 681),
    ]
    assert len(shown(incident)) <= MAX_SHOWN
    mechanism = incident.mechanism
    assert mechanism is not None
    # 305 lines of the sample name it: 104 in ledger.log, 173 in payments-api.jsonl, 28 in the worker's log.
    assert (
        mechanism.count
        == sum(
            path.read_text(encoding="utf-8").count("too many clients already")
            for path in (
                SAMPLE_LOGS / "ledger/ledger.log",
                SAMPLE_LOGS / "payments/payments-api.jsonl",
                SAMPLE_LOGS / "workers/settlement-worker.log",
            )
        )
        == 305
    )
    # Its line is the one that says it.
    lines = (SAMPLE_LOGS / mechanism.first.source.rsplit("sample_logs/", 1)[-1]).read_text().splitlines()
    assert mechanism.first.line is not None
    assert "FATAL: sorry, too many clients already" in lines[mechanism.first.line - 1]
    assert mechanism.first_is_first
    # The noise README names: the fluent-bit restart and the accounts-service deploy, in the appendix.
    noise = {c.service for c in incident.root_cause_candidates if c.noise}
    assert {"accounts-service"} <= noise
    assert not any(c.service == "accounts-service" and not c.noise for c in incident.root_cause_candidates)


def test_a_change_logged_by_a_tool_that_names_the_failing_service_is_that_service_s_change() -> None:
    # The tool logs under its own name; the line names the service it changes, which then fails.
    # (A "Deploying X version V" line gets X as its service from the change classification already.)
    message = "applied config bundle 77 (checkout-api pricing rules) on all nodes"
    events, _ = shape(
        19,
        service="checkout-api",
        errors=("order rejected: pricing rules missing",),
        changes=((31, "spinnaker", "deploy/spinnaker.log", message),),
    )
    incident = incident_of(events)
    top = incident.root_cause_candidates[0]
    assert (top.kind, top.service, top.trigger) == ("change", "checkout-api", "config")
    assert "(logged by spinnaker)" in top.summary
    assert "aimed at what failed" in top.why
    assert top.evidence[0].service == "spinnaker"  # the line is cited as written
    # Long before onset, naming it is no longer enough: a change elsewhere, ruled out.
    events, _ = shape(
        19,
        service="checkout-api",
        errors=("order rejected: pricing rules missing",),
        changes=((5, "spinnaker", "deploy/spinnaker.log", message),),
    )
    (change,) = [c for c in incident_of(events).root_cause_candidates if c.kind == "change"]
    assert change.service == "spinnaker"
    assert change.noise


@pytest.mark.parametrize(
    ("text", "network"),
    [
        ("%LINK-3-UPDOWN: Interface GigabitEthernet0/1, changed state to down", True),
        ("xe-0/0/3 is down, line protocol is down", True),
        ("Interface swp12 (uplink to spine-2) went down", True),
        ("bond0: link status definitely down for interface eth1, disabling it", True),
        ("%BGP-5-ADJCHANGE: neighbor 192.0.2.1 Down BGP Notification sent", True),
        ("BGP peer 198.51.100.7 session closed: hold timer expired", True),
        ("report generation is down to 3s", False),
        ("the download is done", False),
    ],
)
def test_network_state_changes_are_the_network_signature(text: str, network: bool) -> None:
    """Issue 15: an interface, line protocol or routing adjacency going down, as devices word it,
    is a network trigger's word (not only the one wording of the zoo's switch)."""
    found = signatures_of(make_events([{"time": "2024-03-05T08:00:00Z", "message": text, "level": "error"}]))
    assert (str(found.iloc[0]) == "network_partition") is network


# --------------------------------------------------------------------------------------------------
# Issue 15 (helper 9): changes recognized by the shape of their line, a calendar edge by its timing


@pytest.mark.parametrize(
    ("source", "service", "message"),
    [
        # An audit trail with an actor field names the failing service; no change verb of the vocabulary.
        ("ops/audit.logfmt", "checkout", "checkout went live in eu-west (build 3.2.0)"),
        # A CI runner that writes a line an hour: the target named with its version.
        ("ci/runner.logfmt", "ci-runner", "checkout@3.2.0 is now active for all tenants"),
        # A runbook's job kicked off against what fails, named in the errors' words.
        ("runbooks/automation.log", "automation", "job cart-compaction kicked off for checkout"),
    ],
)
def test_an_operators_line_in_words_no_vocabulary_knows_is_the_trigger(source: str, service: str, message: str) -> None:
    events, onset = shape(
        29,
        errors=("cart lookup failed: cart store unavailable",),
        changes=((34.5, service, source, message),),
    )
    line = events.loc[(events["message"] == message).to_numpy()]
    assert (line["kind"] == "log").all()  # the vocabulary does not know it: the shape must
    incident = incident_of(events)
    top = incident.root_cause_candidates[0]
    assert (top.kind, top.trigger, top.service) == ("change", "operation", "checkout")
    assert top.evidence[0].message == message
    assert "recognized by its shape" in top.summary
    assert "before onset" in top.why
    assert top.time is not None
    assert top.time < onset


@pytest.mark.parametrize(
    ("source", "service", "message", "minute"),
    [
        # Aimed at nothing that failed: another service's one-off line.
        ("ops/audit.logfmt", "search", "search went live in eu-west (build 8.4.0)", 34.5),
        # The failing service's own one-off line with nothing of an act about it.
        ("checkout/app.jsonl", "checkout", "cart cache warmed", 34.5),
        # A line that reports a failure is an error signal, not an act.
        ("ops/audit.logfmt", "checkout", "checkout sync with eu-west could not complete, will retry", 34.5),
        # Long before onset and not naming a failing service: no reason to tie it to the failure.
        ("ops/audit.logfmt", "backup", "nightly snapshot of cart-db taken by backup-bot", 1),
    ],
)
def test_a_one_off_line_is_no_trigger_without_its_evidence(
    source: str, service: str, message: str, minute: float
) -> None:
    change = (minute, service, source, message)
    events, _ = shape(31, errors=("cart lookup failed: cart store unavailable",), changes=(change,))
    incident = incident_of(events)
    assert not any(c.trigger == "operation" for c in incident.root_cause_candidates), [
        (c.summary, c.evidence[0].message) for c in incident.root_cause_candidates if c.trigger == "operation"
    ]


def test_a_line_that_recurs_is_routine_not_a_trigger() -> None:
    """The same operational line every ten minutes (a sync job) is the background, however close to onset."""
    routine = tuple(
        (float(m), "automation", "runbooks/automation.log", f"job cart-sync run {m} finished for checkout")
        for m in range(0, 60, 10)
    )
    events, _ = shape(37, errors=("cart lookup failed: cart store unavailable",), changes=routine)
    incident = incident_of(events)
    assert not any(c.trigger == "operation" for c in incident.root_cause_candidates)


def test_a_quiet_window_gets_no_trigger() -> None:
    """No anomaly, no onset: an operator's one-off line is listed nowhere as a cause."""
    records: list[dict[str, object]] = [
        {"time": f"2024-03-05T08:{m:02d}:00Z", "service": "checkout", "level": "info", "message": "GET /cart 200"}
        for m in range(60)
    ]
    records.append(
        {"time": "2024-03-05T08:30:30Z", "service": "ops", "level": "info", "message": "checkout went live (3.2.0)"}
    )
    incident = incident_of(make_events(records))
    assert incident.phases["onset"] is None
    assert incident.root_cause_candidates == ()


@pytest.mark.parametrize(("start", "calendar"), [("2024-02-29T00:00:00.4Z", True), ("2024-02-29T00:07:00Z", False)])
def test_errors_that_begin_at_midnight_are_a_calendar_edge_by_their_timing(start: str, calendar: bool) -> None:
    """Worded as no signature knows ("out of range"), errors from the first second of a day are a
    calendar edge (or a job scheduled then), and the draft says it is told by timing; minutes later, not."""
    t0 = pd.Timestamp(start)
    records: list[dict[str, object]] = [
        {"time": (t0 - pd.Timedelta(minutes=m)).isoformat(), "service": "agent", "level": "info", "message": "tick"}
        for m in range(1, 30)
    ]
    records += [
        {
            "time": (t0 + pd.Timedelta(seconds=7 * k)).isoformat(),
            "service": "agent",
            "level": "error",
            "message": f"issue transfer cert for vm-{k}: 2025-02-29 out of range",
        }
        for k in range(40)
    ]
    events = make_events(sorted(records, key=lambda r: str(r["time"])))
    aggregates = aggregate(events, CONFIG)
    phases = {"onset": t0, "recovered": t0 + pd.Timedelta(seconds=7 * 39)}
    candidates = rank_root_causes(aggregates, phases, "errors", ("agent",), CONFIG)
    edge = [c for c in candidates if c.trigger == "calendar"]
    if calendar:
        assert edge
        assert edge[0].rank == 1
        assert "after midnight UTC" in edge[0].summary
        assert "timing" in edge[0].why
        assert "out of range" in edge[0].evidence[0].message
    else:
        assert not edge


@pytest.mark.parametrize("chatty", [False, True])
def test_an_external_trigger_begins_at_its_sources_first_warning(chatty: bool) -> None:
    """A network monitor warns in its own words a minute before it writes the words of a network
    failure: the trigger begins at that first warning; a monitor that warns all day has no such start."""
    t0 = pd.Timestamp("2024-03-05T09:00:00Z")
    records: list[dict[str, object]] = []
    for m in range(-40, 0):
        records.append({"time": (t0 + pd.Timedelta(minutes=m)).isoformat(), "service": "api", "message": "ok"})
        if chatty and m % 4 == 0:
            at = (t0 + pd.Timedelta(minutes=m, seconds=7)).isoformat()
            records.append({"time": at, "service": "netmon", "level": "warning", "message": f"jitter {m % 7} ms"})
    first = (t0 - pd.Timedelta(seconds=70)).isoformat()
    records.append({"time": first, "service": "netmon", "level": "warning", "message": "tgw-1: web->db path degraded"})
    for k in range(30):
        at = t0 + pd.Timedelta(seconds=20 * k)
        loss = {"service": "netmon", "level": "warning", "message": f"tgw-1 packet loss {3 + k % 4}% on web->db"}
        records.append({"time": (at + pd.Timedelta(seconds=5)).isoformat(), **loss})
        records.append({"time": at.isoformat(), "service": "api", "level": "error", "message": "db query timed out"})
    events = make_events(sorted(records, key=lambda r: str(r["time"])))
    aggregates = aggregate(events, CONFIG)
    phases = {"onset": t0, "recovered": t0 + pd.Timedelta(seconds=20 * 29)}
    candidates = rank_root_causes(aggregates, phases, "errors", ("api",), CONFIG)
    network = next(c for c in candidates if c.trigger == "network")
    if chatty:
        assert "packet loss" in network.evidence[0].message
    else:
        assert network.evidence[0].message == "tgw-1: web->db path degraded"
        assert network.time == pd.Timestamp(first)
