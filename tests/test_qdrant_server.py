"""The Qdrant REST test server, driven by a real ``QdrantClient(url=...)`` over REST.

The API tests send through ``server.transport()`` (the same handler, in process, no socket);
faults, concurrency, the lifecycle and the own-process CLI go over real sockets.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fakes.qdrant import KINDS, Fault, Faults, QdrantTestServer, spawn_qdrant_server
from qdrant_client import QdrantClient, models
from qdrant_client.common.client_exceptions import QdrantException, ResourceExhaustedResponse
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

COLLECTION = "docs"


@pytest.fixture(scope="module")
def shared_server() -> Iterator[QdrantTestServer]:
    with QdrantTestServer() as srv:
        yield srv


@pytest.fixture
def server(shared_server: QdrantTestServer) -> QdrantTestServer:
    shared_server.start()  # in case a test stopped it
    shared_server.reset()
    return shared_server


@pytest.fixture(scope="module")
def shared_client(shared_server: QdrantTestServer) -> Iterator[QdrantClient]:
    # constructing a QdrantClient costs ~0.1 s (SSL context + schema parser): share one;
    # it is thread-safe, and without keep-alive each request gets its own connection
    qc = QdrantClient(url=shared_server.url, timeout=5, check_compatibility=False)
    yield qc
    qc.close()


@pytest.fixture
def client(server: QdrantTestServer, shared_client: QdrantClient) -> QdrantClient:
    return shared_client


@pytest.fixture(scope="module")
def shared_mock_client(shared_server: QdrantTestServer) -> Iterator[QdrantClient]:
    qc = shared_server.client(timeout=5, transport=shared_server.transport())
    yield qc
    qc.close()


@pytest.fixture
def mock_client(server: QdrantTestServer, shared_mock_client: QdrantClient) -> QdrantClient:
    """A client of ``server`` through its in-process transport: no socket."""
    return shared_mock_client


def _create(client: QdrantClient, name: str = COLLECTION) -> None:
    client.create_collection(
        name,
        vectors_config={
            "text": models.VectorParams(size=8, distance=models.Distance.COSINE),
            "title": models.VectorParams(size=4, distance=models.Distance.DOT),
            "colbert": models.VectorParams(
                size=3,
                distance=models.Distance.COSINE,
                multivector_config=models.MultiVectorConfig(
                    comparator=models.MultiVectorComparator.MAX_SIM
                ),
            ),
        },
        sparse_vectors_config={"bm25": models.SparseVectorParams(modifier=models.Modifier.IDF)},
    )


def _point(i: int) -> models.PointStruct:
    return models.PointStruct(
        id=i,
        vector={
            "text": [float((i + k) % 5 + 1) for k in range(8)],
            "title": [float(i + 1), 1.0, 0.5, 0.25],
            "colbert": [[1.0, float(i), 0.5], [0.5, 1.0, float(i % 3)]],
            "bm25": models.SparseVector(indices=[i, i + 100], values=[1.0, 0.5]),
        },
        payload={"i": i, "group": "even" if i % 2 == 0 else "odd"},
    )


def _points(n: int, start: int = 0) -> list[models.PointStruct]:
    return [_point(i) for i in range(start, start + n)]


def _count(server: QdrantTestServer, name: str = COLLECTION) -> int:
    with server.lock:
        return server.local.count(name).count


# --- the API -------------------------------------------------------------------------------


def test_collection_info_shows_dense_sparse_and_multivector_config(
    mock_client: QdrantClient,
) -> None:
    client = mock_client
    _create(client)
    assert client.collection_exists(COLLECTION)
    assert not client.collection_exists("missing")
    assert [c.name for c in client.get_collections().collections] == [COLLECTION]

    params = client.get_collection(COLLECTION).config.params
    assert isinstance(params.vectors, dict)
    assert params.vectors["text"].size == 8
    assert params.vectors["text"].distance == models.Distance.COSINE
    assert params.vectors["title"].size == 4
    assert params.vectors["title"].distance == models.Distance.DOT
    multivector = params.vectors["colbert"].multivector_config
    assert multivector is not None
    assert multivector.comparator == models.MultiVectorComparator.MAX_SIM
    assert params.sparse_vectors is not None
    assert params.sparse_vectors["bm25"].modifier == models.Modifier.IDF


def test_upsert_count_scroll_retrieve_query_delete(
    server: QdrantTestServer, mock_client: QdrantClient
) -> None:
    client = mock_client
    _create(client)
    result = client.upsert(COLLECTION, _points(10))
    assert result.status == models.UpdateStatus.COMPLETED
    assert client.count(COLLECTION).count == 10
    even = models.Filter(
        must=[models.FieldCondition(key="group", match=models.MatchValue(value="even"))]
    )
    assert client.count(COLLECTION, count_filter=even).count == 5

    page, next_offset = client.scroll(COLLECTION, limit=4, with_vectors=True)
    assert [p.id for p in page] == [0, 1, 2, 3]
    assert next_offset == 4
    vectors = page[3].vector
    assert isinstance(vectors, dict)
    assert vectors["title"] == [4.0, 1.0, 0.5, 0.25]
    assert vectors["bm25"] == models.SparseVector(indices=[3, 103], values=[1.0, 0.5])
    colbert, text = vectors["colbert"], vectors["text"]  # cosine: normalised on the way in
    assert isinstance(colbert, list)
    assert [len(v) for v in colbert if isinstance(v, list)] == [3, 3]
    assert isinstance(text, list)
    assert len(text) == 8

    records = client.retrieve(COLLECTION, ids=[7, 2, 99])
    assert sorted(r.id for r in records) == [2, 7]
    assert {r.id: r.payload for r in records}[7] == {"i": 7, "group": "odd"}

    hits = client.query_points(COLLECTION, query=[9.0, 1.0, 0.5, 0.25], using="title", limit=3)
    assert hits.points[0].id == 9
    sparse = models.SparseVector(indices=[4], values=[1.0])
    assert client.query_points(COLLECTION, query=sparse, using="bm25").points[0].id == 4

    client.delete(COLLECTION, points_selector=models.PointIdsList(points=[0, 1]))
    assert client.count(COLLECTION).count == 8
    client.delete(COLLECTION, points_selector=models.FilterSelector(filter=even))
    assert client.count(COLLECTION).count == 4

    # a retried batch overwrites instead of duplicating
    client.upsert(COLLECTION, _points(10))
    client.upsert(COLLECTION, _points(10))
    assert client.count(COLLECTION).count == 10
    assert server.stats.points_upserted == 30

    client.create_payload_index(COLLECTION, "group", models.PayloadSchemaType.KEYWORD)
    assert server.payload_indexes[COLLECTION] == {"group": models.PayloadSchemaType.KEYWORD}
    schema = client.get_collection(COLLECTION).payload_schema
    assert schema["group"].data_type == models.PayloadSchemaType.KEYWORD

    assert client.delete_collection(COLLECTION)
    assert not client.collection_exists(COLLECTION)


def test_batch_upsert_and_query_params(server: QdrantTestServer, mock_client: QdrantClient) -> None:
    client = mock_client
    _create(client)
    batch = models.Batch(
        ids=[1, 2],
        vectors={"title": [[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0]]},
        payloads=[{"a": 1}, {"a": 2}],
    )
    ack = client.upsert(COLLECTION, batch, wait=False, ordering=models.WriteOrdering.STRONG)
    assert ack.status == models.UpdateStatus.ACKNOWLEDGED
    assert client.count(COLLECTION).count == 2
    upsert = [r for r in server.requests if r.kind == "upsert"][-1]
    assert upsert.params == {"wait": "false", "ordering": "strong"}
    assert upsert.points == 2


def test_aliases_round_trip(mock_client: QdrantClient) -> None:
    client = mock_client
    _create(client, "docs_v1")
    _create(client, "docs_v2")
    client.update_collection_aliases(
        change_aliases_operations=[
            models.CreateAliasOperation(
                create_alias=models.CreateAlias(collection_name="docs_v1", alias_name="docs")
            )
        ]
    )
    client.upsert("docs", _points(3))  # writes through the alias
    assert client.count("docs_v1").count == 3
    assert client.get_collection("docs").config.params.sparse_vectors is not None

    client.update_collection_aliases(
        change_aliases_operations=[
            models.DeleteAliasOperation(delete_alias=models.DeleteAlias(alias_name="docs")),
            models.CreateAliasOperation(
                create_alias=models.CreateAlias(collection_name="docs_v2", alias_name="docs")
            ),
        ]
    )
    (alias,) = client.get_aliases().aliases
    assert (alias.alias_name, alias.collection_name) == ("docs", "docs_v2")
    assert [a.alias_name for a in client.get_collection_aliases("docs_v2").aliases] == ["docs"]
    assert client.get_collection_aliases("docs_v1").aliases == []
    assert client.count("docs").count == 0

    client.update_collection_aliases(
        change_aliases_operations=[
            models.RenameAliasOperation(
                rename_alias=models.RenameAlias(old_alias_name="docs", new_alias_name="live")
            )
        ]
    )
    assert [a.alias_name for a in client.get_aliases().aliases] == ["live"]
    with pytest.raises(UnexpectedResponse) as err:
        client.get_collection_aliases("missing")
    assert err.value.status_code == 404


def test_bad_requests_answer_400_and_store_nothing(
    server: QdrantTestServer, mock_client: QdrantClient
) -> None:
    client = mock_client
    _create(client)
    bad = models.PointStruct(id=5, vector={"text": [1.0, 2.0, 3.0]})
    with pytest.raises(UnexpectedResponse) as err:
        client.upsert(COLLECTION, [*_points(3), bad])
    assert err.value.status_code == 400
    message = err.value.structured()["status"]["error"]
    assert message.startswith("Wrong input: Vector dimension error: expected dim: 8, got 3")
    assert _count(server) == 0  # the whole batch is rejected
    assert server.stats.points_rejected == 4

    with pytest.raises(UnexpectedResponse) as err:
        client.upsert(COLLECTION, [models.PointStruct(id=1, vector={"nope": [1.0]})])
    assert err.value.status_code == 400
    assert "Not existing vector name error: nope" in err.value.structured()["status"]["error"]

    # a sink can bisect a batch down to the bad point
    batch = [*_points(3), bad, *_points(4, start=10)]

    def bisect(points: list[models.PointStruct]) -> list[models.ExtendedPointId]:
        try:
            client.upsert(COLLECTION, points)
            return []
        except UnexpectedResponse as e:
            if e.status_code != 400:
                raise
            if len(points) == 1:
                return [points[0].id]
            mid = len(points) // 2
            return bisect(points[:mid]) + bisect(points[mid:])

    assert bisect(batch) == [5]
    assert _count(server) == 7

    http = httpx.Client(base_url=server.url, transport=server.transport())
    malformed = http.put(f"/collections/{COLLECTION}/points", content=b'{"points":')
    assert malformed.status_code == 400
    assert malformed.json()["status"]["error"].startswith("Format error in JSON body")
    wrong_shape = http.put(f"/collections/{COLLECTION}/points", json={"pts": []})
    assert wrong_shape.status_code == 400

    with pytest.raises(UnexpectedResponse) as err:
        client.upsert("missing", _points(1))
    assert err.value.status_code == 404
    assert err.value.structured()["status"]["error"] == (
        "Not found: Collection `missing` doesn't exist!"
    )
    with pytest.raises(UnexpectedResponse) as err:
        _create(client)
    assert err.value.status_code == 409
    assert http.get("/no/such/route").status_code == 404
    assert server.stats.statuses[404] == 2  # the missing collection and the unknown route


# --- faults --------------------------------------------------------------------------------


def test_429_retry_after_variants(server: QdrantTestServer, client: QdrantClient) -> None:
    _create(client)
    server.push_script(429, Fault(429, retry_after_s=0), Fault(429, retry_after_s=None))
    with pytest.raises(ResourceExhaustedResponse) as exhausted:
        client.upsert(COLLECTION, _points(2))
    assert exhausted.value.retry_after_s == 1
    assert "Rate limiting exceeded" in str(exhausted.value)
    with pytest.raises(ResourceExhaustedResponse) as exhausted:
        client.upsert(COLLECTION, _points(2))
    assert exhausted.value.retry_after_s == 0
    # without Retry-After, qdrant-client raises a plain UnexpectedResponse(429)
    with pytest.raises(UnexpectedResponse) as err:
        client.upsert(COLLECTION, _points(2))
    assert err.value.status_code == 429
    assert "retry-after" not in err.value.headers

    # a fractional Retry-After is not an int: qdrant-client raises a bare QdrantException
    server.faults = Faults(script=[429], retry_after_s=0.5)
    with pytest.raises(QdrantException, match="not a valid integer") as err2:
        client.upsert(COLLECTION, _points(2))
    assert not isinstance(err2.value, ResourceExhaustedResponse)
    assert _count(server) == 0
    client.upsert(COLLECTION, _points(2))  # the script is used up
    assert _count(server) == 2


def test_5xx_arrive_as_unexpected_response(server: QdrantTestServer, client: QdrantClient) -> None:
    _create(client)
    server.push_script(500, 502, 503)
    statuses = []
    for _ in range(3):
        with pytest.raises(UnexpectedResponse) as err:
            client.upsert(COLLECTION, _points(2))
        statuses.append(err.value.status_code)
        if err.value.status_code == 502:
            assert err.value.content.startswith(b"<html>")  # like a proxy's
        else:
            assert "error" in err.value.structured()["status"]
    assert statuses == [500, 502, 503]
    server.push_script(Fault(503, retry_after_s=2))  # e.g. a proxy asking to back off
    with pytest.raises(UnexpectedResponse) as err:
        client.upsert(COLLECTION, _points(2))
    assert (err.value.status_code, err.value.headers["retry-after"]) == (503, "2")
    assert client.count(COLLECTION).count == 0  # other kinds are not in scope by default
    client.upsert(COLLECTION, _points(2))
    stats = server.stats
    assert stats.faults == {"500": 1, "502": 1, "503": 2}
    assert stats.responses[("PUT /collections/{name}/points", 503)] == 2
    assert stats.upsert_requests == 5
    assert stats.upserts_applied == 1


def test_connection_reset_mid_response(server: QdrantTestServer, client: QdrantClient) -> None:
    _create(client)
    server.push_script("reset")
    with pytest.raises(ResponseHandlingException) as err:
        client.upsert(COLLECTION, _points(3))
    assert isinstance(err.value.source, httpx.TransportError)
    assert _count(server) == 0
    server.push_script(Fault(reset=True, apply=True))
    with pytest.raises(ResponseHandlingException):
        client.upsert(COLLECTION, _points(3))
    assert _count(server) == 3  # applied, but the client could not know
    assert server.stats.statuses["reset+apply"] == 1
    client.upsert(COLLECTION, _points(3))  # the retry overwrites
    assert client.count(COLLECTION).count == 3


def test_timeout_is_bounded_and_released(server: QdrantTestServer) -> None:
    # the client's timeout is rounded up to whole seconds, so 1 s is the shortest possible
    slow_client = QdrantClient(url=server.url, timeout=1, check_compatibility=False)
    _create(slow_client)
    server.faults = Faults(script=[Fault(timeout=True, apply=True)], hold_s=10)
    started = time.monotonic()
    with pytest.raises(ResponseHandlingException) as err:
        slow_client.upsert(COLLECTION, _points(2))
    assert isinstance(err.value.source, httpx.TimeoutException)
    assert 0.9 < time.monotonic() - started < 3
    assert _count(server) == 2  # the write happened before the client gave up
    # the held handler notices that the client hung up and releases its slot
    deadline = time.monotonic() + 2
    while server.in_flight and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.in_flight == 0
    assert server.stats.faults["timeout+apply"] == 1
    slow_client.close()


def test_stop_releases_held_and_paused_requests() -> None:
    srv = QdrantTestServer(faults=Faults(kinds=None, script=["timeout"], hold_s=30)).start()
    errors: list[BaseException] = []

    def call() -> None:
        try:
            httpx.get(f"{srv.url}/collections", timeout=10)
        except httpx.HTTPError as e:
            errors.append(e)

    held = threading.Thread(target=call)
    held.start()
    assert srv.wait_for_in_flight(1)
    srv.pause()
    paused = threading.Thread(target=call)
    paused.start()
    assert srv.wait_for_in_flight(2)
    started = time.monotonic()
    srv.close()
    assert time.monotonic() - started < 1.0
    held.join(2)
    paused.join(2)
    assert not held.is_alive()
    assert not paused.is_alive()
    assert len(errors) >= 1  # the held request is reset; the paused one may still be answered


def test_latency(server: QdrantTestServer, client: QdrantClient) -> None:
    _create(client)
    server.faults = Faults(latency_s=0.2)
    started = time.monotonic()
    client.upsert(COLLECTION, _points(1))
    assert time.monotonic() - started >= 0.2
    started = time.monotonic()
    client.count(COLLECTION)  # not an upsert: not delayed
    assert time.monotonic() - started < 0.2


def test_random_faults_are_deterministic(server: QdrantTestServer, client: QdrantClient) -> None:
    _create(client)

    def run() -> list[object]:
        server.faults = Faults(error_rate=0.5, reset_rate=0.1, retry_after_s=0, seed=42)
        outcomes: list[object] = []
        for i in range(30):
            try:
                client.upsert(COLLECTION, _points(1, start=i))
                outcomes.append("ok")
            except ResourceExhaustedResponse:
                outcomes.append(429)
            except UnexpectedResponse as e:
                outcomes.append(e.status_code)
            except ResponseHandlingException:
                outcomes.append("reset")
        return outcomes

    first = run()
    assert run() == first
    assert {"ok", 429, 500, 502, 503, "reset"} <= set(first)
    assert server.stats.points_upserted == 2 * first.count("ok")


def test_fault_scope_and_per_kind_rates(server: QdrantTestServer, client: QdrantClient) -> None:
    _create(client)
    server.faults = Faults(kinds=frozenset({"count"}), script=[503])
    client.upsert(COLLECTION, _points(1))
    with pytest.raises(UnexpectedResponse):
        client.count(COLLECTION)
    server.faults = Faults(kinds=None, error_rate={"scroll": 1.0}, error_statuses=[500])
    client.upsert(COLLECTION, _points(1))
    with pytest.raises(UnexpectedResponse) as err:
        client.scroll(COLLECTION)
    assert err.value.status_code == 500
    assert {"upsert", "count", "scroll", "root", "create_collection"} <= KINDS


def test_concurrency_cap_answers_503(server: QdrantTestServer, client: QdrantClient) -> None:
    _create(client)
    server.faults = Faults(max_concurrent=2)
    server.pause()
    results: list[object] = []

    def upsert(start: int) -> None:
        results.append(client.upsert(COLLECTION, _points(2, start=start)).status)

    workers = [threading.Thread(target=upsert, args=(i * 10,)) for i in range(2)]
    for w in workers:
        w.start()
    assert server.wait_for_in_flight(2)
    with pytest.raises(UnexpectedResponse) as err:
        client.upsert(COLLECTION, _points(2, start=100))
    assert err.value.status_code == 503
    assert client.count(COLLECTION).count == 0  # other kinds are not capped
    server.resume()
    for w in workers:
        w.join(5)
    assert results == [models.UpdateStatus.COMPLETED] * 2
    assert server.max_concurrent_seen == 3  # the two held upserts + the count
    assert server.stats.faults["over_cap"] == 1
    assert _count(server) == 4


def test_concurrency_cap_under_load(server: QdrantTestServer, client: QdrantClient) -> None:
    _create(client)
    server.faults = Faults(max_concurrent=2, latency_s=0.1)
    barrier = threading.Barrier(6)
    outcomes: list[object] = []

    def upsert(start: int) -> None:
        barrier.wait()
        try:
            client.upsert(COLLECTION, _points(1, start=start))
            outcomes.append(200)
        except UnexpectedResponse as e:
            outcomes.append(e.status_code)

    workers = [threading.Thread(target=upsert, args=(i,)) for i in range(6)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(5)
    assert len(outcomes) == 6
    assert set(outcomes) <= {200, 503}
    assert outcomes.count(200) >= 1
    assert 503 in outcomes
    assert server.max_concurrent_seen <= 2


def test_apply_then_fail_stores_the_points(server: QdrantTestServer, client: QdrantClient) -> None:
    _create(client)
    server.faults = Faults(error_rate=1.0, error_statuses=[500], apply_then_fail=True)
    with pytest.raises(UnexpectedResponse) as err:
        client.upsert(COLLECTION, _points(5))
    assert err.value.status_code == 500
    assert client.count(COLLECTION).count == 5
    with pytest.raises(UnexpectedResponse):
        client.upsert(COLLECTION, _points(5))  # the retry overwrites: still 5 points
    assert client.count(COLLECTION).count == 5
    assert server.stats.faults["500+apply"] == 2
    assert [r.applied for r in server.requests if r.kind == "upsert"] == [True, True]


# --- modes ---------------------------------------------------------------------------------


def test_no_store_mode_counts_points() -> None:
    with QdrantTestServer(store=False) as srv:
        client = srv.client(timeout=5)
        _create(client)
        client.upsert(COLLECTION, _points(7))
        client.upsert(COLLECTION, models.Batch(ids=[1, 2], vectors={"title": [[1.0] * 4] * 2}))
        assert client.count(COLLECTION).count == 0
        stats = srv.stats
        assert (stats.points_upserted, stats.upserts_applied) == (9, 2)
        with pytest.raises(UnexpectedResponse) as err:
            client.upsert("missing", _points(1))
        assert err.value.status_code == 404
        bad = httpx.put(f"{srv.url}/collections/{COLLECTION}/points", content=b"[1, 2")
        assert bad.status_code == 400
        client.close()


def test_api_key() -> None:
    with QdrantTestServer(api_key="secret", read_only_api_key="reader") as srv:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Api key is used with an insecure connection")
            good = srv.client(timeout=5)
            reader = QdrantClient(
                url=srv.url, api_key="reader", https=False, check_compatibility=False
            )
            wrong = QdrantClient(
                url=srv.url, api_key="nope", https=False, check_compatibility=False
            )
        anonymous = QdrantClient(url=srv.url, check_compatibility=False)
        _create(good)
        for qc, status in ((anonymous, 401), (wrong, 401)):
            with pytest.raises(UnexpectedResponse) as err:
                qc.get_collections()
            assert err.value.status_code == status
        assert b"Must provide an API key" in httpx.get(f"{srv.url}/collections").content
        assert httpx.get(srv.url).json()["version"] == srv.version  # `/` stays open
        assert reader.count(COLLECTION).count == 0
        with pytest.raises(UnexpectedResponse) as err:
            reader.upsert(COLLECTION, _points(1))
        assert err.value.status_code == 403
        good.upsert(COLLECTION, _points(1))
        assert reader.count(COLLECTION).count == 1
        for qc in (good, reader, wrong, anonymous):
            qc.close()


def _join_version_check() -> None:
    for thread in threading.enumerate():
        if "_check_compatibility" in thread.name:
            thread.join(5)


def test_check_compatibility_request(server: QdrantTestServer) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        qc = QdrantClient(url=server.url)  # check_compatibility defaults to True
        _join_version_check()
        old = QdrantTestServer(version="0.9.0").start()
        QdrantClient(url=old.url).close()
        _join_version_check()
        old.close()
    qc.close()
    assert server.stats.requests["GET /"] == 1  # the background version check
    messages = [str(w.message) for w in caught]
    assert len(messages) == 1
    assert "incompatible with server version 0.9.0" in messages[0]


def test_restart_keeps_data_and_port(server: QdrantTestServer, client: QdrantClient) -> None:
    _create(client)
    client.upsert(COLLECTION, _points(3))
    url = server.url
    server.stop()
    with pytest.raises(ResponseHandlingException):
        client.count(COLLECTION)
    server.start()
    assert server.url == url
    assert client.count(COLLECTION).count == 3


def test_own_process_and_the_command_line_shim() -> None:
    """``spawn_qdrant_server`` (``python -m fakes.qdrant --json``), and the path benchmarks run,
    ``python tests/qdrant_server.py``, whose first line is the URL."""
    with spawn_qdrant_server() as child:
        qc = QdrantClient(url=child.ready["url"], timeout=5, check_compatibility=False)
        _create(qc)
        qc.upsert(COLLECTION, _points(3))
        assert qc.count(COLLECTION).count == 3
        qc.close()
        process = child.process
    assert process.poll() is not None  # terminated on exit

    shim = Path(__file__).with_name("qdrant_server.py")
    cmd = [sys.executable, str(shim), "--port", "0", "--no-store"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert httpx.get(url + "/healthz", timeout=5).text == "healthz check passed"
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=10)
    assert out.startswith("requests=1 points_upserted=0"), out
