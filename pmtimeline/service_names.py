"""Service names compared loosely: the one rule for "is this alert (or change) about that service?".

Alerts, incident tools and logs spell one service in many ways: ``payments`` (a namespace or a
PagerDuty service), ``Payments API`` (a PagerDuty service summary), ``payments-api`` (a Kubernetes
deployment, a log's app field), ``payments_api`` (a Prometheus job), ``PaymentsApi``,
``payments-api-7d9f8b6c4-x2x9z`` (a pod). Two names are the same service when, once each is cut
into lower-case words (at any character that is not a letter or digit, and where a lower-case
letter meets an upper-case one):

* their words are equal, or equal when run together (``paymentsapi`` and ``payments-api``);
* the words of one begin the words of the other (``payments`` is ``payments-api``,
  ``checkout`` is ``checkout-service``, ``payments-api`` is its pod ``payments-api-7d9f8b6c4-x2x9z``),
  but never inside a word (``pay`` is not ``payments``);
* they are equal once trailing generic words are dropped (:data:`GENERIC_WORDS`: ``payments-service``
  is ``payments-api``; ``payments-api`` is still not ``payments-worker``);
* a ``namespace/name`` pair (Argo CD, Flux) also compares by its last part.

See docs/alerts.md for where alert payloads take the service name from.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Final

import numpy as np
import pandas as pd

#: Words that say what kind of thing a service is, not which one: dropped from the end of a name
#: before names are compared (``payments-service`` and ``payments-api`` are one service).
GENERIC_WORDS: Final = frozenset(
    {"api", "app", "application", "backend", "deploy", "deployment", "server", "service", "srv", "svc"}
)

_CAMEL_RE: Final = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_SEPARATOR_RE: Final = re.compile(r"[^0-9A-Za-z]+")


def service_words(name: str) -> tuple[str, ...]:
    """The lower-case words of a service name: ``Payments API`` and ``PaymentsApi`` -> ``("payments", "api")``."""
    return tuple(word for word in _SEPARATOR_RE.split(_CAMEL_RE.sub("-", name).lower()) if word)


def _core(words: tuple[str, ...]) -> tuple[str, ...]:
    end = len(words)
    while end > 1 and words[end - 1] in GENERIC_WORDS:
        end -= 1
    return words[:end]


def _spellings(name: str) -> list[tuple[str, ...]]:
    spellings = [service_words(name)]
    if "/" in name:
        spellings.append(service_words(name.rsplit("/", 1)[-1]))
    return [words for words in spellings if words]


def _words_match(a: tuple[str, ...], b: tuple[str, ...]) -> bool:
    if a == b or "".join(a) == "".join(b):
        return True
    shorter, longer = (a, b) if len(a) <= len(b) else (b, a)
    if longer[: len(shorter)] == shorter:
        return True
    return _core(a) == _core(b)


@lru_cache(maxsize=4096)
def same_service(a: str, b: str) -> bool:
    """True when two service names name the same service (see the module docstring); an empty
    name is no service and matches nothing."""
    return any(_words_match(x, y) for x in _spellings(a) for y in _spellings(b))


def service_matches(service: str | None, services: Sequence[str]) -> bool:
    """True when an alert about ``service`` concerns one of ``services``.

    An alert that names no service, or a list of no services, concerns everything: it cannot be
    told apart, and the caller's other conditions (time) decide.
    """
    if not service or not service.strip() or not [s for s in services if s and s.strip()]:
        return True
    return any(same_service(service, name) for name in services if name)


def same_service_mask(a: pd.Series, b: pd.Series) -> np.ndarray:
    """:func:`same_service` of each pair of rows of two aligned columns (missing names match
    nothing); computed once per distinct pair, so long columns of few names are cheap."""
    left = a.astype("string").fillna("").to_numpy(dtype=object)
    right = b.astype("string").fillna("").to_numpy(dtype=object)
    pairs = pd.MultiIndex.from_arrays([left, right])
    codes, uniques = pd.factorize(pairs)
    verdict = np.fromiter(
        (bool(x) and bool(y) and same_service(str(x), str(y)) for x, y in uniques),
        dtype=bool,
        count=len(uniques),
    )
    return verdict[codes] if len(codes) else np.zeros(0, dtype=bool)


def matching_services(service: str | None, services: Iterable[str]) -> list[str]:
    """The names among ``services`` that are the same service as ``service`` (none for no service)."""
    if not service:
        return []
    return [name for name in services if name and same_service(service, name)]
