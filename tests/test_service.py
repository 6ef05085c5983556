"""The HTTP service on the real demo catalog: every endpoint, bad input, auth, limits, path traversal."""

from __future__ import annotations

import asyncio
import io
import json
import shutil
import subprocess
import sys
import wave
from pathlib import Path

import httpx
import pytest
from conftest import DEMO

from mmrec import Engine

pytestmark = pytest.mark.skipif(not DEMO.is_dir(), reason="demo catalog not present")

fastapi = pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from mmrec.service import ServiceLimits, create_app  # noqa: E402

KEY = "s3cret-key"
ANIMALS = ["animals/cow", "animals/sheep", "animals/horse"]


@pytest.fixture(scope="module")
def ingested(tmp_path_factory, real_encoders):
    path = tmp_path_factory.mktemp("svc") / "db"
    Engine(str(path)).ingest(DEMO)
    return path


@pytest.fixture(scope="module")
def client(ingested):
    """A read-only client on the module's database, with an API key (writes need it, reads do not)."""
    with TestClient(create_app(str(ingested), api_key=KEY)) as c:
        yield c


@pytest.fixture
def db_copy(ingested, tmp_path):
    copy = tmp_path / "db"
    shutil.copytree(ingested, copy)
    return copy


@pytest.fixture
def writer(db_copy):
    """A client on a copy of the database, for tests that write; no API key."""
    with TestClient(create_app(str(db_copy))) as c:
        yield c


def detail(response) -> str:
    body = response.json()
    assert isinstance(body["detail"], str) and body["detail"], body
    return body["detail"]


def ids(results) -> list[str]:
    return [r["id"] for r in results]


def wav_bytes(seconds: float = 1.0, rate: int = 16000) -> bytes:
    import numpy as np

    t = np.arange(int(seconds * rate)) / rate
    samples = (0.3 * np.sin(2 * np.pi * 440 * t) * 32767).astype("<i2")
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.tobytes())
    return buf.getvalue()


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


# ----------------------------------------------------------------------------- items


def test_items_list_pages_and_filters(client):
    r = client.get("/items", params={"limit": 5})
    assert r.status_code == 200
    page = r.json()
    assert page["total"] == 45 and page["limit"] == 5 and len(page["items"]) == 5
    assert ids(page["items"]) == sorted(ids(page["items"]))
    second = client.get("/items", params={"limit": 5, "offset": 5}).json()
    assert not set(ids(page["items"])) & set(ids(second["items"]))
    audio = client.get("/items", params={"where": "has_audio AND NOT has_image", "limit": 100}).json()
    assert audio["total"] == len(audio["items"]) > 0
    for item in audio["items"]:
        assert item["media"]["audio"].endswith("/media/audio") and item["media"]["image"] is None
    cow = client.get("/items", params={"where": "id = 'animals/cow'"}).json()["items"][0]
    assert cow["media"] == {"image": "/items/animals/cow/media/image", "audio": "/items/animals/cow/media/audio"}
    assert "catalog" not in cow  # the server's folder layout is not the client's business


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"where": "nonsense((("}, 400),
        ({"where": "no_such_column = 1"}, 400),
        ({"limit": -1}, 422),
        ({"limit": "ten"}, 422),
        ({"limit": 100000}, 422),
        ({"offset": -5}, 422),
    ],
)
def test_items_bad_parameters(client, params, status):
    r = client.get("/items", params=params)
    assert r.status_code == status, r.text
    detail(r)


def test_item_detail(client):
    r = client.get("/items/animals/cow")
    assert r.status_code == 200
    item = r.json()
    assert item["id"] == "animals/cow" and item["title"] == "Cow"
    assert {f["role"] for f in item["files"]} == {"image", "audio", "text", "sidecar"}
    assert all(not f["path"].startswith("/") for f in item["files"])
    assert item["labels"]["audio"][0]["label"]
    assert abs(sum(item["fusion_weights"].values()) - 1) < 1e-3
    assert item["metadata"]["category"] == "animals"
    assert str(DEMO) not in r.text


def test_unknown_item_is_404_without_server_paths(client, ingested):
    r = client.get("/items/animals/unicorn")
    assert r.status_code == 404
    assert "animals/unicorn" in detail(r) and str(ingested) not in detail(r)


# ----------------------------------------------------------------------------- media


def test_media_streams_the_items_files(client):
    image = client.get("/items/animals/cow/media/image")
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"
    assert image.content == (DEMO / "animals" / "cow.png").read_bytes()
    assert image.headers["x-content-type-options"] == "nosniff"
    audio = client.get("/items/animals/cow/media/audio")
    assert audio.status_code == 200 and audio.headers["content-type"] == "audio/mpeg"
    assert audio.content == (DEMO / "animals" / "cow.mp3").read_bytes()
    part = client.get("/items/animals/cow/media/audio", headers={"Range": "bytes=0-99"})
    assert part.status_code == 206 and len(part.content) == 100  # seeking in the audio player


def test_media_of_a_missing_modality_or_kind(client):
    apple = client.get("/items/food/apple").json()
    assert apple["media"]["audio"] is None
    assert client.get("/items/food/apple/media/audio").status_code == 404
    r = client.get("/items/animals/cow/media/video")
    assert r.status_code == 422 and detail(r)
    assert client.get("/items/animals/unicorn/media/image").status_code == 404


@pytest.mark.parametrize(
    "url",
    [
        "/items/..%2F..%2Fetc%2Fpasswd/media/image",
        "/items/..%2F..%2F..%2F..%2F..%2F..%2Fetc%2Fpasswd/media/audio",
        "/items/animals%2F..%2F..%2F..%2Fetc%2Fpasswd/media/image",
        "/items/%2Fetc%2Fpasswd/media/image",
        "/items/animals/cow%2F..%2F..%2F..%2Fpyproject.toml/media/image",
    ],
)
def test_media_path_traversal_is_refused(client, url):
    r = client.get(url)
    assert r.status_code in (403, 404), r.text
    assert "root:" not in r.text and "[project]" not in r.text


def _tamper(db: Path, item_id: str, role: str, new_path: str, catalog: str | None = None) -> None:
    engine = Engine(str(db))
    row = engine.store.get(item_id)
    row["files"] = [{**f, "path": new_path} if f["role"] == role else f for f in row["files"]]
    if catalog is not None:
        row["catalog"] = catalog
    engine.store.upsert([row])


@pytest.mark.parametrize(
    "stored",
    ["../../../../../../etc/passwd", "/etc/passwd", "../../pyproject.toml", "../../README.md", "../../mmrec/py.typed"],
)
def test_media_with_a_tampered_stored_path_is_refused(db_copy, stored):
    _tamper(db_copy, "animals/cow", "image", stored)
    with TestClient(create_app(str(db_copy), warm=False)) as c:
        r = c.get("/items/animals/cow/media/image")
    assert r.status_code in (403, 404), r.text
    assert "root:" not in r.text and "[project]" not in r.text


def test_media_symlink_escaping_the_catalog_is_refused(tmp_path, real_encoders):
    catalog = tmp_path / "catalog"
    (catalog / "pics").mkdir(parents=True)
    shutil.copy(DEMO / "animals" / "cow.png", catalog / "pics" / "cow.png")
    shutil.copy(DEMO / "animals" / "owl.png", catalog / "pics" / "owl.png")
    db = tmp_path / "db"
    Engine(str(db)).ingest(catalog)
    outside = tmp_path / "outside"
    outside.mkdir()
    secret = outside / "secret.png"
    shutil.copy(DEMO / "animals" / "pig.png", secret)
    (catalog / "pics" / "owl.png").unlink()
    (catalog / "pics" / "owl.png").symlink_to(secret)  # swapped for a link out of the catalog after ingest
    with TestClient(create_app(str(db), warm=False)) as c:
        assert c.get("/items/pics/cow/media/image").status_code == 200
        r = c.get("/items/pics/owl/media/image")
        assert r.status_code == 403 and "outside the catalog" in detail(r)
        (catalog / "pics" / "cow.png").unlink()
        assert c.get("/items/pics/cow/media/image").status_code == 404  # gone since the ingest


# ----------------------------------------------------------------------------- similar


def test_similar_by_text_and_by_item(client):
    r = client.post("/similar", json={"text": "an owl hooting at night", "k": 3})
    assert r.status_code == 200
    body = r.json()
    assert body["query"] == {"kind": "text", "value": "an owl hooting at night"} and body["modality"] == "any"
    assert len(body["results"]) == 3 and body["results"][0]["id"] == "animals/owl"
    top = body["results"][0]
    assert top["media"]["image"] and top["matched"] in top["modality_scores"]
    r = client.post("/similar", json={"item": "animals/cow", "k": 5, "modality": "audio"})
    assert r.status_code == 200
    results = r.json()["results"]
    assert len(results) == 5 and "animals/cow" not in ids(results)
    assert all(m["matched"] == "audio" and m["media"]["audio"] for m in results)
    r = client.post("/similar", json={"text": "music", "k": 40, "where": "id LIKE 'music/%'"})
    assert r.status_code == 200 and all(i.startswith("music/") for i in ids(r.json()["results"]))


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"{bad json", 422),
        (b"", 422),
        (b"[1, 2]", 422),
        (b'{"k": 3}', 422),
        (b'{"text": "owl", "item": "animals/cow"}', 422),
        (b'{"text": "owl", "modality": "video"}', 422),
        (b'{"text": "owl", "k": 0}', 422),
        (b'{"text": "owl", "k": "many"}', 422),
        (b'{"text": "owl", "colour": "red"}', 422),
        (b'{"text": "   "}', 422),
        (b'{"text": "owl", "where": "bad((("}', 400),
        (b'{"item": "animals/unicorn"}', 404),
        ('{"text": "caf\xe9"}'.encode("latin-1"), 422),
    ],
)
def test_similar_bad_json_requests(client, body, status):
    r = client.post("/similar", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == status, r.text
    detail(r)


def test_similar_malformed_json_names_the_problem(client):
    r = client.post("/similar", content=b'{"text": ', headers={"Content-Type": "application/json"})
    assert r.status_code == 422 and "malformed JSON" in detail(r)


def test_similar_wrong_content_type_is_415(client):
    r = client.post("/similar", content=b"text=owl", headers={"Content-Type": "text/plain"})
    assert r.status_code == 415 and detail(r)


def test_similar_by_uploaded_image_and_sound(client):
    png = (DEMO / "animals" / "owl.png").read_bytes()
    r = client.post("/similar", files={"image": ("my owl.png", png, "image/png")}, data={"k": "3", "modality": "image"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["query"] == {"kind": "image", "value": "my owl.png"} and body["modality"] == "image"
    assert body["results"][0]["id"] == "animals/owl" and body["results"][0]["score"] > 0.99  # the same picture
    mp3 = (DEMO / "animals" / "cow.mp3").read_bytes()
    r = client.post("/similar", files={"audio": ("moo.mp3", mp3, "audio/mpeg")}, data={"k": "4", "modality": "audio"})
    assert r.status_code == 200, r.text
    assert r.json()["results"][0]["id"] == "animals/cow" and len(r.json()["results"]) == 4
    # A generic declared type is fine: the content decides.
    r = client.post("/similar", files={"audio": ("tone", wav_bytes(), "application/octet-stream")})
    assert r.status_code == 200, r.text


@pytest.mark.parametrize(
    ("field", "name", "content", "declared"),
    [
        ("image", "notes.txt", b"just some text, not an image\n" * 20, "text/plain"),
        ("image", "notes.png", b"just some text, not an image\n" * 20, "image/png"),  # lying extension and type
        ("audio", "cow.png", (DEMO / "animals" / "cow.png").read_bytes(), "audio/mpeg"),  # a PNG sent as audio
        ("audio", "cow.png", (DEMO / "animals" / "cow.png").read_bytes(), "application/octet-stream"),
        ("image", "tone.wav", wav_bytes(), "image/png"),  # a sound sent as an image
        ("image", "doc.svg", b'<svg xmlns="http://www.w3.org/2000/svg"/>', "image/svg+xml"),
    ],
)
def test_upload_of_the_wrong_type_is_415(client, field, name, content, declared):
    r = client.post("/similar", files={field: (name, content, declared)})
    assert r.status_code == 415, r.text
    detail(r)


def test_corrupt_uploads_are_4xx_with_the_decoder_message(client):
    png = (DEMO / "animals" / "owl.png").read_bytes()
    r = client.post("/similar", files={"image": ("cut.png", png[: len(png) // 2], "image/png")})
    assert r.status_code == 422, r.text
    assert "truncated" in detail(r) or "corrupt" in detail(r)
    wav = wav_bytes()
    r = client.post("/similar", files={"audio": ("cut.wav", wav[:44], "audio/wav")})  # a header and no samples
    assert 400 <= r.status_code < 500, r.text
    r = client.post("/similar", files={"image": ("empty.png", b"", "image/png")})
    assert r.status_code == 422 and "empty" in detail(r)


@pytest.mark.parametrize(
    ("files", "data"),
    [
        ({"video": ("x.png", b"x", "image/png")}, {}),
        ({"image": ("a.png", b"x", "image/png"), "audio": ("b.wav", b"y", "audio/wav")}, {}),
        ({}, {"text": "owl"}),
    ],
)
def test_upload_needs_exactly_one_image_or_audio_file(client, files, data):
    r = client.post("/similar", files=files or {"other": ("", b"", "text/plain")}, data=data)
    assert r.status_code == 422, r.text
    detail(r)


def test_upload_form_fields_are_validated(client):
    png = (DEMO / "animals" / "owl.png").read_bytes()
    for data, status in (({"k": "0"}, 422), ({"modality": "smell"}, 422), ({"where": "bad((("}, 400)):
        r = client.post("/similar", files={"image": ("owl.png", png, "image/png")}, data=data)
        assert r.status_code == status, (data, r.text)


def test_oversized_upload_is_413(ingested):
    limits = ServiceLimits(max_upload_bytes=50_000, multipart_overhead=1_000, max_json_bytes=2_000)
    mp3 = (DEMO / "animals" / "cow.mp3").read_bytes()  # 241 KB
    assert len(mp3) > limits.max_upload_bytes
    with TestClient(create_app(str(ingested), limits=limits, warm=False)) as c:
        # Declared length over the limit: refused before reading.
        r = c.post("/similar", files={"audio": ("cow.mp3", mp3, "audio/mpeg")})
        assert r.status_code == 413 and "too large" in detail(r)
        # No Content-Length (chunked): the bytes are counted as they arrive.
        boundary = "mmrecboundary"
        body = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="audio"; filename="cow.mp3"\r\n'
            f"Content-Type: audio/mpeg\r\n\r\n".encode()
            + mp3
            + f"\r\n--{boundary}--\r\n".encode()
        )

        def chunks():
            for i in range(0, len(body), 8192):
                yield body[i : i + 8192]

        r = c.post("/similar", content=chunks(), headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
        assert r.status_code == 413 and "too large" in detail(r)
        # JSON bodies have their own, smaller limit.
        big = [{"user": "u", "item": "animals/cow", "event": "like", "at": i} for i in range(100)]
        r = c.post("/interactions", json=big)
        assert r.status_code == 413
        # A small upload still works on the same app.
        small = wav_bytes(0.5, 8000)
        assert len(small) < limits.max_upload_bytes
        assert c.post("/similar", files={"audio": ("t.wav", small, "audio/wav")}).status_code == 200


def test_invalid_content_length_is_400(client):
    r = client.post("/similar", content=b"{}", headers={"Content-Type": "application/json", "Content-Length": "abc"})
    assert r.status_code == 400


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
