"""The HTTP service on the real demo catalog: health, page, docs, recommendations and interactions, auth,
robustness, the serve CLI (the item, media and similar routes: tests/test_service_items.py)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import httpx
import pytest
from conftest import DEMO
from service_helpers import ANIMALS, KEY, detail, ids

from mmrec import Engine

pytestmark = pytest.mark.skipif(not DEMO.is_dir(), reason="demo catalog not present")

fastapi = pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from mmrec.service import create_app  # noqa: E402


@pytest.fixture(scope="module")
def ingested(service_db):
    return service_db


@pytest.fixture
def writer(db_copy):
    """A client on a copy of the database, for tests that write; no API key."""
    with TestClient(create_app(str(db_copy))) as c:
        yield c


# ----------------------------------------------------------------------------- health, page, docs


def test_health_is_open_and_ready(client):
    r = client.get("/health")
    assert r.status_code == 200
    assert r.json() == {"status": "ok", "version": r.json()["version"], "ready": True}


def test_web_page_and_assets_are_served(client):
    r = client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in r.headers["content-security-policy"]
    assert 'src="static/app.js"' in r.text
    for asset, kind in (("app.js", "javascript"), ("style.css", "text/css")):
        a = client.get(f"/static/{asset}")
        assert a.status_code == 200 and kind in a.headers["content-type"]
    assert client.get("/static/../app.py").status_code == 404


def test_openapi_documents_every_field(client):
    spec = client.get("/openapi.json").json()
    paths = spec["paths"]
    for path in ("/items", "/items/{item_id}", "/items/{item_id}/media/{kind}", "/similar", "/interactions"):
        assert path in paths, sorted(paths)
    assert "/users/{user_id}/recommendations" in paths
    schemas = spec["components"]["schemas"]
    for name in ("SimilarRequest", "SimilarUpload", "InteractionIn", "RecommendationsResponse", "ItemDetail"):
        assert name in schemas
    undocumented = [
        f"{name}.{prop}"
        for name, schema in schemas.items()
        if name not in ("HTTPValidationError", "ValidationError")  # FastAPI's own
        for prop, field in schema.get("properties", {}).items()
        if not field.get("description")
    ]
    assert not undocumented, undocumented
    # Both bodies of POST /similar are documented.
    content = paths["/similar"]["post"]["requestBody"]["content"]
    assert set(content) == {"application/json", "multipart/form-data"}
    assert client.get("/docs").status_code == 200


def test_unknown_route_is_a_json_404(client):
    r = client.get("/nope")
    assert r.status_code == 404 and detail(r)


# ----------------------------------------------------------------------------- recommendations and interactions


def test_recommendations_for_an_unknown_user_are_cold_start(client):
    r = client.get("/users/nobody/recommendations", params={"k": 4})
    assert r.status_code == 200
    body = r.json()
    assert body["cold_start"] and body["strategy"] == "newest" and "unknown user" in body["message"]
    assert len(body["items"]) == 4
    r = client.get("/users/nobody/recommendations", params={"k": 3, "query": "fresh fruit"})
    assert r.json()["strategy"] == "query" and len(r.json()["items"]) == 3


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"k": 0}, 422),
        ({"k": 5000}, 422),
        ({"diversity": 2}, 422),
        ({"modality": "video"}, 422),
        ({"explain": "perhaps"}, 422),
        ({"where": "bad((("}, 400),
        ({"query": ""}, 422),
    ],
)
def test_recommendations_bad_parameters(client, params, status):
    r = client.get("/users/nobody/recommendations", params=params)
    assert r.status_code == status, r.text
    detail(r)


def test_recommendations_change_after_interactions(writer):
    before = writer.get("/users/alice/recommendations", params={"k": 6, "explain": True}).json()
    assert before["strategy"] == "newest"
    r = writer.post("/interactions", json=[{"user": "alice", "item": i, "event": "like"} for i in ANIMALS])
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["recorded"] == 3 and body["users"] == 1 and body["duplicates"] == 0
    assert [x["item"] for x in body["interactions"]] == ANIMALS and body["interactions"][0]["weight"] == 4.0
    after = writer.get("/users/alice/recommendations", params={"k": 6, "explain": True}).json()
    assert after["strategy"] == "profile" and not after["cold_start"]
    assert ids(after["items"]) != ids(before["items"])
    assert not set(ids(after["items"])) & set(ANIMALS)  # consumed items are not recommended again
    assert sum(i.startswith("animals/") for i in ids(after["items"])) >= 3
    first = after["items"][0]
    assert first["because"] and {b["item"] for b in first["because"]} <= set(ANIMALS)
    assert first["modalities"] and abs(sum(first["modalities"].values()) - 1) < 1e-3
    assert first["media"]["image"]
    # One more interaction (a single object) moves the list again, at once.
    r = writer.post("/interactions", json={"user": "alice", "item": first["id"], "event": "dislike"})
    assert r.status_code == 200 and r.json()["recorded"] == 1
    again = writer.get("/users/alice/recommendations", params={"k": 6}).json()
    assert first["id"] not in ids(again["items"])


def test_interaction_batch_with_bad_entries_is_rejected_whole(writer):
    batch = [
        {"user": "bob", "item": "animals/cow", "event": "like"},
        {"user": "bob", "item": "animals/unicorn", "event": "like"},
        {"user": "bob", "item": "animals/pig", "event": "adore"},
        {"user": "bob", "item": "animals/pig", "event": "like", "at": "yesterday-ish"},
        {"user": "", "item": "animals/pig"},
        "not an object",
    ]
    r = writer.post("/interactions", json=batch)
    assert r.status_code == 422, r.text
    body = r.json()
    assert "nothing recorded" in body["detail"]
    assert [e["index"] for e in body["errors"]] == [1, 2, 3, 4, 5]
    assert "unknown item 'animals/unicorn'" in body["errors"][0]["reason"]
    assert "timestamp" in body["errors"][2]["reason"]
    rec = writer.get("/users/bob/recommendations").json()
    assert rec["strategy"] == "newest"  # the good entry was not recorded either


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"user": "carol", "item": "animals/unicorn", "event": "like"}, 404),
        ({"user": "carol", "event": "like"}, 422),
        ({"user": "carol", "item": "animals/cow", "event": "rating"}, 422),
        ({"user": "carol", "item": "animals/cow", "weight": 1e9}, 422),
        ({"user": "carol", "item": "animals/cow", "extra": 1}, 422),
        ([], 422),
        (42, 422),
    ],
)
def test_bad_single_interactions(writer, body, status):
    r = writer.post("/interactions", json=body)
    assert r.status_code == status, r.text
    detail(r)


def test_interactions_malformed_json_is_422(writer):
    r = writer.post("/interactions", content=b'{"user": "x",', headers={"Content-Type": "application/json"})
    assert r.status_code == 422 and "malformed JSON" in detail(r)


def test_same_interaction_twice_counts_once_and_ratings_work(writer):
    one = {"user": "dave", "item": "animals/cow", "event": "like", "at": "2025-01-02T03:04:05Z"}
    assert writer.post("/interactions", json=one).json()["recorded"] == 1
    r = writer.post(
        "/interactions",
        json=[one, {"user": "dave", "item": "music/piano", "event": "rating", "rating": 5, "at": 1_760_000_000}],
    )
    assert r.status_code == 200
    assert r.json()["recorded"] == 1 and r.json()["duplicates"] == 1
    assert r.json()["interactions"][1]["weight"] == 4.0


def test_user_ids_with_slashes_and_spaces(writer):
    r = writer.post("/interactions", json={"user": "team/a b", "item": "animals/cow", "event": "like"})
    assert r.status_code == 200
    rec = writer.get("/users/team%2Fa%20b/recommendations").json()
    assert rec["user"] == "team/a b" and rec["strategy"] == "profile"


# ----------------------------------------------------------------------------- auth


def test_writes_need_the_key(client):
    one = {"user": "eve", "item": "animals/cow", "event": "like"}
    r = client.post("/interactions", json=one)
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer" and "API key" in detail(r)
    r = client.post("/interactions", json=one, headers={"X-API-Key": "wrong"})
    assert r.status_code == 401 and "wrong" in detail(r)
    r = client.post("/interactions", json=one, headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 401
    r = client.post("/interactions", json=one, headers={"Authorization": f"Basic {KEY}"})
    assert r.status_code == 401
    # Reads stay open without --private.
    assert client.get("/items").status_code == 200
    assert client.post("/similar", json={"item": "animals/cow"}).status_code == 200
    assert client.get("/users/eve/recommendations").status_code == 200


def test_the_right_key_opens_writes(db_copy):
    one = {"user": "eve", "item": "animals/cow", "event": "like"}
    with TestClient(create_app(str(db_copy), api_key=KEY, warm=False)) as c:
        assert c.post("/interactions", json=one, headers={"X-API-Key": KEY}).status_code == 200
        two = {**one, "item": "animals/pig"}
        assert c.post("/interactions", json=two, headers={"Authorization": f"Bearer {KEY}"}).status_code == 200
        # Auth is checked before the body: a bad body without the key is still a 401.
        assert c.post("/interactions", content=b"{bad", headers={"Content-Type": "application/json"}).status_code == 401


def test_private_mode_needs_the_key_for_reads(ingested):
    with TestClient(create_app(str(ingested), api_key=KEY, private=True, warm=False)) as c:
        for method, url, kwargs in [
            ("get", "/items", {}),
            ("get", "/items/animals/cow", {}),
            ("get", "/items/animals/cow/media/image", {}),
            ("post", "/similar", {"json": {"item": "animals/cow"}}),
            ("get", "/users/x/recommendations", {}),
        ]:
            assert getattr(c, method)(url, **kwargs).status_code == 401, url
            r = getattr(c, method)(url, headers={"X-API-Key": KEY}, **kwargs)
            assert r.status_code == 200, (url, r.text)
        # The page, its assets, the health check and the docs hold no data.
        for url in ("/", "/static/app.js", "/health", "/openapi.json"):
            assert c.get(url).status_code == 200, url


def test_private_mode_without_a_key_is_refused(ingested):
    from mmrec.errors import InvalidArgumentError

    with pytest.raises(InvalidArgumentError, match="API key"):
        create_app(str(ingested), private=True)


# ----------------------------------------------------------------------------- robustness


def test_database_without_items_answers_503(tmp_path):
    (tmp_path / "empty").mkdir()  # a database folder without tables yet
    with TestClient(create_app(str(tmp_path / "empty"))) as c:
        assert c.get("/health").json()["ready"] is True
        r = c.get("/items")
        assert r.status_code == 503 and "no items" in detail(r)
        assert c.get("/users/x/recommendations").status_code == 503
    # A path with no database at all: the same 503, and neither the answer nor the folder names the server's paths.
    with TestClient(create_app(str(tmp_path / "missing"))) as c:
        r = c.get("/items")
        assert r.status_code == 503 and "no database" in detail(r) and str(tmp_path) not in r.text
    assert not (tmp_path / "missing").exists()


def test_concurrent_requests_on_a_cold_engine(ingested):
    """Many requests at once on an engine that has loaded nothing yet: the lazy set-up is thread-safe."""
    app = create_app(Engine(str(ingested)), warm=False)

    async def run() -> list[int]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            calls = []
            for i in range(6):
                calls.append(c.post("/similar", json={"text": f"a sound of animal number {i}", "k": 3}))
                calls.append(c.post("/similar", json={"item": ANIMALS[i % 3], "k": 3}))
                calls.append(c.get(f"/users/u{i}/recommendations", params={"k": 3}))
            return [r.status_code for r in await asyncio.gather(*calls)]

    assert asyncio.run(run()) == [200] * 18


# ----------------------------------------------------------------------------- CLI


def _mmrec(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run(
        [sys.executable, "-m", "mmrec.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "MMREC_API_KEY": "", **(env or {})},
    )


def test_serve_cli_errors_are_one_line(tmp_path, ingested):
    r = _mmrec("serve", "--db", str(ingested), "--private")
    assert (
        r.returncode == 1
        and r.stderr.strip() == "mmrec: error: --private needs an API key (--api-key or MMREC_API_KEY)"
    )
    r = _mmrec("serve", "--db", str(tmp_path / "empty"))
    assert r.returncode == 1 and "has no items yet" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    r = _mmrec("serve", "--db", str(ingested), "--port", "70000")
    assert r.returncode == 1 and "--port" in r.stderr
    r = _mmrec("serve", "--db", str(ingested), "--threads", "-1")
    assert r.returncode == 1 and "--threads" in r.stderr
    r = _mmrec("serve", "--help")
    assert r.returncode == 0 and "--api-key" in r.stdout and "--private" in r.stdout
    for flag in ("--config", "--metrics", "--log-format", "--header-timeout", "--shutdown-timeout"):
        assert flag in r.stdout, flag


def test_error_body_shape_is_uniform(client):
    responses = [
        client.get("/items/nope"),
        client.get("/items", params={"where": "(("}),
        client.get("/items", params={"limit": -1}),
        client.post("/interactions", json={"user": "x", "item": "animals/cow"}),
    ]
    for r in responses:
        body = r.json()
        assert set(body) <= {"detail", "errors"} and isinstance(body["detail"], str), body
        json.dumps(body)
