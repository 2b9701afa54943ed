"""The event schema: columns, dtypes, validation, level mapping."""

from __future__ import annotations

import pandas as pd
import pytest

from pmtimeline.errors import SchemaError
from pmtimeline.schema import (
    COUNT_COLUMNS,
    EVENT_COLUMNS,
    LEVELS,
    SEVERITY_NUMBER,
    conform_events,
    empty_counts,
    empty_events,
    normalize_levels,
    severity_numbers,
    validate_events,
)


def test_empty_frames_have_every_column_in_order() -> None:
    assert tuple(empty_events().columns) == EVENT_COLUMNS
    assert tuple(empty_counts().columns) == COUNT_COLUMNS
    validate_events(empty_events())


def test_conform_adds_missing_casts_and_drops_extras() -> None:
    frame = pd.DataFrame(
        {
            "timestamp": ["2024-03-01T10:00:00+01:00", "2024-03-01T09:30:00Z"],
            "source": ["a.log", "a.log"],
            "kind": ["log", "request"],
            "http_status": [200, None],
            "extra": [1, 2],
        }
    )
    out = conform_events(frame)
    assert tuple(out.columns) == EVENT_COLUMNS
    assert str(out["timestamp"].dtype) == "datetime64[ns, UTC]"
    assert out["timestamp"].iloc[0] == pd.Timestamp("2024-03-01T09:00:00Z")
    assert str(out["http_status"].dtype) == "Int64"
    assert pd.isna(out["http_status"].iloc[1])
    assert out["message"].isna().all()
    validate_events(out)


def test_validate_names_what_is_wrong() -> None:
    with pytest.raises(SchemaError, match=r"lacks columns: .*message"):
        validate_events(pd.DataFrame({"timestamp": []}))
    bad = empty_events().astype({"line": "float64"})
    with pytest.raises(SchemaError, match="wrong dtypes: line"):
        validate_events(bad)
    frame = conform_events(pd.DataFrame({"timestamp": ["2024-03-01T00:00:00Z"], "source": ["s"], "kind": ["oops"]}))
    with pytest.raises(SchemaError, match="unknown kinds: oops"):
        validate_events(frame)
    frame = conform_events(pd.DataFrame({"timestamp": ["2024-03-01T00:00:00Z"], "source": [None], "kind": ["log"]}))
    with pytest.raises(SchemaError, match="nulls in required columns: source"):
        validate_events(frame)


@pytest.mark.parametrize(
    ("raw", "level"),
    [
        ("INFO", "info"),
        ("WARN", "warning"),
        (" [error] ", "error"),
        ("FATAL", "critical"),
        ("notice", "notice"),
        ("SEVERE", "error"),
        ("Informational", "info"),
        ("emerg", "emergency"),
        ("banana", None),
    ],
)
def test_levels_normalize(raw: str, level: str | None) -> None:
    out = normalize_levels(pd.Series([raw]))
    assert (pd.isna(out.iloc[0]) and level is None) or out.iloc[0] == level


def test_severity_numbers_follow_opentelemetry() -> None:
    nums = severity_numbers(pd.Series([*list(LEVELS), None], dtype="string"))
    assert list(nums.iloc[:-1]) == [SEVERITY_NUMBER[x] for x in LEVELS]
    assert pd.isna(nums.iloc[-1])
    assert SEVERITY_NUMBER["error"] == 17
    assert SEVERITY_NUMBER["warning"] == 13
    assert SEVERITY_NUMBER["info"] == 9


def test_logger_is_its_own_column_and_no_logger_key_names_the_service() -> None:
    from pmtimeline.schema import ECS_FIELD_MAP, EVENT_DTYPES, FIELD_ALIASES

    assert EVENT_COLUMNS.index("logger") == EVENT_COLUMNS.index("service") + 1
    assert str(EVENT_DTYPES["logger"]) == "string"
    assert ECS_FIELD_MAP["log.logger"] == "logger"
    assert ECS_FIELD_MAP["service.name"] == "service"
    logger_keys = {key for key, column in {**ECS_FIELD_MAP, **FIELD_ALIASES}.items() if column == "logger"}
    assert {"log.logger", "logger", "logger_name"} <= logger_keys
    # An app field names the service; a logger's name never does.
    assert all(FIELD_ALIASES[key] == "service" for key in ("service", "app", "application", "app_name"))
    assert not any("logger" in key for key, column in FIELD_ALIASES.items() if column == "service")
    out = conform_events(pd.DataFrame({"timestamp": ["2024-03-01T10:00:00Z"], "source": ["a"], "kind": ["log"]}))
    assert pd.isna(out["logger"].iloc[0])
    validate_events(out)
