"""esstub itself: the protocol rules and query features the connector tests rely on.

Each test drives the stub with the real ``elasticsearch`` client (or plain HTTP for header rules
the client never breaks), and the expected answers come from the reference
(``../shared/reference/elasticsearch.md``) or from the documents loaded.
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from typing import Any

import pytest
from elasticsearch import BadRequestError, Elasticsearch, NotFoundError, UnsupportedProductError, helpers
from esstub import LONG_MAX, EsStub

DOCS: list[dict[str, Any]] = [
    {"@timestamp": "2024-03-01T00:00:00Z", "service": {"name": "api"}, "message": "GET /a ok", "status": 200},
    {"@timestamp": "2024-03-01T00:00:30Z", "service": {"name": "api"}, "message": "GET /b failed", "status": 503},
    {"@timestamp": "2024-03-01T00:01:10Z", "service": {"name": "db"}, "message": "Deployed schema v2", "status": 200},
    {"@timestamp": "2024-03-01T00:03:00Z", "service": {"name": "api"}, "message": "GET /c ok", "status": 200},
    {"service": {"name": "db"}, "message": "no time"},
]
MAPPINGS = {
    "properties": {
        "@timestamp": {"type": "date"},
        "service": {"properties": {"name": {"type": "keyword"}}},
        "message": {"type": "text"},
        "status": {"type": "long"},
    }
}


@pytest.fixture
def es() -> Iterator[tuple[EsStub, Elasticsearch]]:
    with EsStub(emulate_major=9) as stub:
        client = Elasticsearch(stub.url)
        client.indices.create(index="logs", mappings=MAPPINGS)
        helpers.bulk(
            client, ({"_index": "logs", "_id": str(i), "_source": d} for i, d in enumerate(DOCS)), refresh=True
        )
        yield stub, client
        client.close()


def raw_request(url: str, method: str, path: str, body: bytes | None, headers: dict[str, str]) -> tuple[int, Any]:
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=5)
    conn.request(method, path, body=body, headers=headers)
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, json.loads(data) if data else None


def test_info_and_product_header() -> None:
    with EsStub(emulate_major=8) as stub:
        client = Elasticsearch(stub.url)
        assert client.info()["version"]["number"].startswith("8.")
        assert client.ping()
    with EsStub(product_header=False) as stub:
        client = Elasticsearch(stub.url)
        assert not client.ping()
        with pytest.raises(UnsupportedProductError):
            client.info()


def test_compat_header_rules() -> None:
    compat = "application/vnd.elasticsearch+json; compatible-with={}"
    with EsStub(emulate_major=8) as stub:
        status, body = raw_request(stub.url, "GET", "/", None, {"Accept": compat.format(9)})
        assert status == 400
        assert body["error"]["type"] == "media_type_header_exception"
        assert "must be either version 8 or 7, but found 9" in body["error"]["caused_by"]["reason"]
        status, _ = raw_request(
            stub.url, "POST", "/_search", b"{}", {"Accept": compat.format(8), "Content-Type": "application/json"}
        )
        assert status == 400  # compat on one header only
        status, body = raw_request(stub.url, "POST", "/_search", b"{}", {"Content-Type": "text/plain"})
        assert status == 406
        status, _ = raw_request(stub.url, "POST", "/_search", b"{}", {"Content-Type": "application/json"})
        assert status == 200
    with EsStub(emulate_major=9) as stub:
        status, _ = raw_request(stub.url, "GET", "/", None, {"Accept": compat.format(8)})
        assert status == 200  # REST compatibility with N-1


def test_bulk_reports_item_errors(es: tuple[EsStub, Elasticsearch]) -> None:
    stub, client = es
    resp = client.bulk(
        operations=[{"create": {"_index": "logs", "_id": "0"}}, {"a": 1}, {"index": {"_index": "logs"}}, {"b": 2}]
    )
    assert resp["errors"] is True
    assert resp["items"][0]["create"]["status"] == 409
    assert resp["items"][1]["index"]["status"] == 201
    assert stub.calls("bulk")[0].method in ("PUT", "POST")


def test_pit_search_after_and_missing_sort_values(es: tuple[EsStub, Elasticsearch]) -> None:
    stub, client = es
    pit = client.open_point_in_time(index="logs", keep_alive="1m")["id"]
    sort = [{"@timestamp": {"order": "asc", "format": "strict_date_optional_time_nanos"}}, {"_shard_doc": "asc"}]
    seen: list[list[Any]] = []
    after: list[Any] | None = None
    while True:
        extra = {"search_after": after} if after else {}
        resp = client.search(pit={"id": pit, "keep_alive": "1m"}, sort=sort, size=2, track_total_hits=False, **extra)
        hits = resp["hits"]["hits"]
        assert "total" not in resp["hits"]
        if not hits:
            break
        seen.extend(h["sort"] for h in hits)
        after = hits[-1]["sort"]
    assert [s[0] for s in seen] == [
        "2024-03-01T00:00:00.000Z",
        "2024-03-01T00:00:30.000Z",
        "2024-03-01T00:01:10.000Z",
        "2024-03-01T00:03:00.000Z",
        LONG_MAX,
    ]
    assert client.close_point_in_time(id=pit)["num_freed"] == 1
    assert stub.open_contexts() == 0


def test_validation_errors(es: tuple[EsStub, Elasticsearch]) -> None:
    _stub, client = es
    with pytest.raises(BadRequestError, match="action_request_validation_exception"):
        client.search(index="logs", search_after=[1])
    with pytest.raises(BadRequestError, match="illegal_argument_exception"):
        client.search(index="logs", from_=9_999, size=2)
    pit = client.open_point_in_time(index="logs", keep_alive="1m")["id"]
    with pytest.raises(BadRequestError):
        client.search(index="logs", pit={"id": pit})
    with pytest.raises(NotFoundError, match="index_not_found_exception"):
        client.search(index="missing")


def test_queries(es: tuple[EsStub, Elasticsearch]) -> None:
    _stub, client = es

    def count(query: dict[str, Any]) -> int:
        return int(client.count(index="logs", query=query)["count"])

    assert count({"match_all": {}}) == 5
    assert count({"range": {"@timestamp": {"gte": "2024-03-01T00:00:30Z", "lt": "2024-03-01T00:03:00Z"}}}) == 2
    assert count({"range": {"@timestamp": {"gte": 1709251230000, "format": "epoch_millis"}}}) == 3
    assert count({"terms": {"service.name": ["db"]}}) == 2
    assert (
        count(
            {"bool": {"filter": [{"term": {"service.name": "api"}}], "must_not": [{"range": {"status": {"gte": 500}}}]}}
        )
        == 2
    )
    assert count({"query_string": {"query": "service.name:api AND NOT status:503"}}) == 2
    assert count({"query_string": {"query": 'message:"schema v2" OR message:fail*'}}) == 2
    assert count({"query_string": {"query": "deploy*", "fields": ["message"]}}) == 1
    assert count({"exists": {"field": "@timestamp"}}) == 4


def test_aggregations(es: tuple[EsStub, Elasticsearch]) -> None:
    _stub, client = es
    resp = client.search(
        index="logs",
        size=0,
        aggs={
            "per_min": {"date_histogram": {"field": "@timestamp", "fixed_interval": "1m"}},
            "svc": {"terms": {"field": "service.name", "size": 1}},
            "bad": {"filter": {"range": {"status": {"gte": 500}}}},
        },
    )
    aggs = resp["aggregations"]
    assert [b["doc_count"] for b in aggs["per_min"]["buckets"]] == [2, 1, 0, 1]  # gaps filled
    assert aggs["svc"]["buckets"] == [{"key": "api", "doc_count": 3}]
    assert aggs["svc"]["sum_other_doc_count"] == 2
    assert aggs["bad"]["doc_count"] == 1
    keys: list[dict[str, Any]] = []
    after: dict[str, Any] | None = None
    while True:
        composite: dict[str, Any] = {
            "size": 1,
            "sources": [
                {"t": {"date_histogram": {"field": "@timestamp", "fixed_interval": "1m"}}},
                {"s": {"terms": {"field": "service.name"}}},
            ],
        }
        if after:
            composite["after"] = after
        page = client.search(index="logs", size=0, aggs={"c": {"composite": composite}})["aggregations"]["c"]
        if not page["buckets"]:
            break
        keys.extend(b["key"] for b in page["buckets"])
        after = page["after_key"]
    assert keys == [
        {"t": 1709251200000, "s": "api"},
        {"t": 1709251260000, "s": "db"},
        {"t": 1709251380000, "s": "api"},
    ]


def test_text_fields_refuse_aggregations_like_elasticsearch() -> None:
    with EsStub() as stub:
        stub.add_documents("dyn", [{"@timestamp": "2024-03-01T00:00:00Z", "service": "api"}])
        client = Elasticsearch(stub.url)
        caps = client.field_caps(index="dyn", fields="service,service.keyword")["fields"]
        assert caps["service"]["text"]["aggregatable"] is False
        assert caps["service.keyword"]["keyword"]["aggregatable"] is True
        with pytest.raises(BadRequestError):
            client.search(index="dyn", size=0, aggs={"s": {"terms": {"field": "service"}}})
        resp = client.search(index="dyn", size=0, aggs={"s": {"terms": {"field": "service.keyword"}}})
        assert resp["aggregations"]["s"]["buckets"] == [{"key": "api", "doc_count": 1}]


def test_scroll_with_scan_helper(es: tuple[EsStub, Elasticsearch]) -> None:
    stub, client = es
    hits = list(helpers.scan(client, index="logs", size=2))
    assert sorted(h["_id"] for h in hits) == ["0", "1", "2", "3", "4"]
    assert stub.calls("scroll", "DELETE")
    assert stub.open_contexts() == 0


def test_track_total_hits_limit(es: tuple[EsStub, Elasticsearch]) -> None:
    _stub, client = es
    assert client.search(index="logs", track_total_hits=3)["hits"]["total"] == {"value": 3, "relation": "gte"}
    assert client.search(index="logs")["hits"]["total"] == {"value": 5, "relation": "eq"}


def test_faults_apply_to_the_chosen_calls(es: tuple[EsStub, Elasticsearch]) -> None:
    stub, client = es
    stub.add_fault("count", "status", status=429, first_call=2, times=2)
    client_no_retry = client.options(max_retries=0)
    assert client_no_retry.count(index="logs")["count"] == 5
    for _ in range(2):
        with pytest.raises(Exception, match="429"):
            client_no_retry.count(index="logs")
    assert client_no_retry.count(index="logs")["count"] == 5
    assert [r.route for r in stub.requests].count("count") == 4


def test_gzip_bodies_and_plain_json_answers() -> None:
    with EsStub(plain_json=True) as stub:
        client = Elasticsearch(stub.url, http_compress=True)
        client.indices.create(index="logs", mappings=MAPPINGS)
        helpers.bulk(client, ({"_index": "logs", "_source": d} for d in DOCS), refresh=True)
        assert client.count(index="logs", query={"term": {"service.name": "db"}})["count"] == 2
        assert stub.calls("count")[0].headers.get("content-encoding") == "gzip"
        assert stub.calls("count")[0].body == {"query": {"term": {"service.name": "db"}}}
