"""The HTTP service on the real demo catalog: the item, media and similar routes, bad input, uploads and their
limits, path traversal (the other routes: tests/test_service.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import DEMO
from service_helpers import detail, ids, wav_bytes

from mmrec import Engine

pytestmark = pytest.mark.skipif(not DEMO.is_dir(), reason="demo catalog not present")

fastapi = pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from mmrec.service import ServiceLimits, create_app  # noqa: E402


@pytest.fixture(scope="module")
def ingested(service_db):
    return service_db


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
