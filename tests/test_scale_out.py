"""Past one machine: a database on a real S3 API (moto's server), ingested with ``--engine ray``.

One module-scoped fixture starts moto on 127.0.0.1 (a free port), creates a bucket, and ingests a small
catalog twice: locally into a folder (the reference) and with ``--engine ray`` (a local Ray, 2 workers,
``num_cpus=2``) into ``s3://``. Every other test reads or writes that S3 database. Skipped, with the
reason, only when the S3 server cannot start.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest
from conftest import free_port
from media_factory import small_catalog

from mmrec.cli import main
from mmrec.errors import InvalidArgumentError, WriterBusyError
from mmrec.store.location import check_uri, env_for_workers, lock_file, storage_options
from mmrec.store.writer import Writer

BUCKET = "mmrec-scale-test"


def run(capsys, *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# --------------------------------------------------------------------------- no server needed


def test_storage_options_come_from_the_clouds_standard_environment():
    env = {
        "AWS_ACCESS_KEY_ID": "k",
        "AWS_SECRET_ACCESS_KEY": "s",
        "AWS_REGION": "eu-west-1",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9000",
        "AWS_ALLOW_HTTP": "true",
        "GOOGLE_SERVICE_ACCOUNT": "/sa.json",
    }
    assert storage_options("s3://b/db", env) == {
        "aws_access_key_id": "k",
        "aws_secret_access_key": "s",
        "aws_region": "eu-west-1",
        "aws_endpoint": "http://127.0.0.1:9000",
        "allow_http": "true",
    }
    assert storage_options("gs://b/db", env) == {"google_service_account": "/sa.json"}
    assert storage_options("/data/db", env) == {} and env_for_workers("/data/db", env) == {}
    assert set(env_for_workers("s3://b/db", env)) == {k for k in env if k.startswith("AWS_")}


def test_bad_database_uris_are_refused_with_the_valid_schemes(capsys):
    for uri, said in [("ftp://host/db", "unsupported database URI scheme 'ftp://'"), ("s3://", "names no bucket")]:
        with pytest.raises(InvalidArgumentError, match=said):
            check_uri(uri)
    code, _, err = run(capsys, "info", "--db", "ftp://host/db")
    assert code != 0 and "s3://" in err and len(err.strip().splitlines()) == 1


def test_an_object_store_database_has_a_machine_wide_lock(tmp_path, monkeypatch):
    """Two writers of one s3:// URI on this machine take turns, like two writers of a folder."""
    monkeypatch.setenv("MMREC_LOCK_DIR", str(tmp_path / "locks"))
    uri = "s3://bucket/some/db"
    assert lock_file(uri).parent == tmp_path / "locks" and lock_file(uri) == lock_file(uri + "/")
    assert lock_file(uri) != lock_file("s3://bucket/other")
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with Writer(uri).hold("ingest"):
            held.set()
            release.wait(10)

    t = threading.Thread(target=hold)
    t.start()
    try:
        assert held.wait(10)
        with pytest.raises(WriterBusyError, match="being written by another process"):
            with Writer(uri, wait=False).hold("train"):
                pass
    finally:
        release.set()
        t.join()
    with Writer(uri, wait=False).hold("train"):  # free again
        pass


def test_ray_options_need_the_ray_engine(capsys, tmp_path):
    code, _, err = run(capsys, "ingest", str(tmp_path), "--ray-address", "auto")
    assert code != 0 and "--engine ray" in err
    code, _, err = run(capsys, "ingest", str(tmp_path), "--engine", "ray", "--ray-workers", "0")
    assert code != 0 and "--ray-workers must be >= 1, got 0" in err


def test_fragments_replace_changed_rows_in_one_commit(tmp_path, catalog, real_encoders):
    """The commit of a distributed ingest: new rows appended and changed rows replaced, in one version."""
    pytest.importorskip("lance")
    from mmrec import Engine
    from mmrec.store.fragments import commit_fragments, fragment_target, write_fragment

    engine = Engine(tmp_path / "db")  # real_encoders: the session's loaded models are shared
    engine.ingest(catalog)
    store = engine.store
    before = store.version()
    owl = store.get("birds/owl")
    changed = {**owl, "title": "Owl, replaced"}
    new = {**owl, "id": "birds/owl-2", "title": "A second owl"}
    frag = write_fragment(fragment_target(store), [changed, new])
    with store.writer.hold("test"):
        version = commit_fragments(store, [frag], ["birds/owl", "birds/owl-2"])
    assert version == before + 1 == store.version()
    assert store.count() == 6 and store.duplicate_ids() == []
    assert store.get("birds/owl")["title"] == "Owl, replaced" and store.get("birds/owl-2")["title"] == "A second owl"
    np.testing.assert_allclose(store.get("birds/owl-2")["fused_vec"], owl["fused_vec"])
    assert [m.id for m in engine.similar(item="birds/owl", k=1)] == ["birds/owl-2"]  # searchable at once


# --------------------------------------------------------------------------- against S3


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    """A moto S3 server on 127.0.0.1 with a bucket, and the AWS environment that points at it."""
    try:
        from moto.server import ThreadedMotoServer
    except ImportError as e:
        pytest.skip(f"the S3 server cannot start: moto[server] is not installed ({e})")
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    try:
        server.start()
    except Exception as e:  # a port taken meanwhile, a broken install
        pytest.skip(f"the S3 server cannot start: {e}")
    endpoint = f"http://127.0.0.1:{port}"
    env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ALLOW_HTTP": "true",
        "MMREC_LOCK_DIR": str(tmp_path_factory.mktemp("locks")),
    }
    with pytest.MonkeyPatch.context() as mp:
        for k, v in env.items():
            mp.setenv(k, v)
        import boto3

        boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(Bucket=BUCKET)
        yield endpoint
    server.stop()


@pytest.fixture(scope="module")
def ingested(s3, tmp_path_factory):
    """The same catalog ingested locally (reference) and with ``--engine ray`` into S3; both reports."""
    pytest.importorskip("ray")
    root = tmp_path_factory.mktemp("scale")
    catalog = small_catalog(root / "catalog")
    (root / "catalog" / "broken.png").write_bytes(b"not an image")  # a problem both runs must report
    local_db, s3_db = str(root / "local-db"), f"s3://{BUCKET}/mmrec/db"
    assert main(["ingest", str(catalog), "--db", local_db, "-q", "--json"]) == 0
    assert main(["ingest", str(catalog), "--db", s3_db, "-q", "--engine", "ray", "--ray-workers", "2"]) == 0
    return {"catalog": catalog, "local": local_db, "s3": s3_db}


def test_ray_ingest_into_s3_stores_what_a_local_ingest_stores(ingested):
    from mmrec.store.items import Store

    local, remote = Store(ingested["local"]), Store(ingested["s3"])
    ids = [r["id"] for r in local.list(None)]
    assert ids == [r["id"] for r in remote.list(None)] and len(ids) >= 5
    a, b = local.rows(ids), remote.rows(ids)
    for i in ids:
        for col in ("text_vec", "image_vec", "audio_vec", "fused_vec", "text_shared", "image_shared", "audio_shared"):
            x, y = a[i].get(col), b[i].get(col)
            assert (x is None) == (y is None), (i, col)
            if x is not None:
                x, y = np.asarray(x), np.asarray(y)
                assert float(x @ y / (np.linalg.norm(x) * np.linalg.norm(y))) >= 0.999, (i, col)
        for col in ("item_hash", "text", "title", "tags", "has_text", "has_image", "has_audio", "problems"):
            assert a[i][col] == b[i][col], (i, col)
    key = lambda p: (p["path"], p["reason"], p["item_id"] or "")  # noqa: E731
    assert sorted(map(key, remote.problems())) == sorted(map(key, local.problems()))
    assert remote.duplicate_ids() == [] and remote.size_on_disk() is None
    assert remote.version() is not None


def test_a_rerun_encodes_nothing_and_writes_nothing(ingested, capsys):
    from mmrec.store.items import Store

    before = Store(ingested["s3"]).version()
    code, out, _ = run(capsys, "ingest", str(ingested["catalog"]), "--db", ingested["s3"], "--engine", "ray", "--json")
    report = json.loads(out)
    assert code == 0 and sum(report["encoded"].values()) == 0 and report["added"] == report["updated"] == 0
    assert Store(ingested["s3"]).version() == before


def test_every_command_works_on_the_s3_database(ingested, capsys, tmp_path):
    db = ingested["s3"]
    code, out, _ = run(capsys, "items", "--db", db, "--json", "--limit", "100")
    assert code == 0 and {"birds/owl", "sounds/rain"} <= {r["id"] for r in json.loads(out)}
    code, out, _ = run(capsys, "items", "birds/owl", "--db", db, "--json")
    assert code == 0 and json.loads(out)["title"] == "Great horned owl"
    code, out, _ = run(capsys, "info", "--db", db, "--json")
    info = json.loads(out)
    assert code == 0 and info["items"] >= 5 and info["size_bytes"] is None
    code, out, _ = run(capsys, "similar", "--db", db, "--item", "birds/owl", "-k", "3", "--json")
    assert code == 0 and len(json.loads(out)) == 3
    events = tmp_path / "events.csv"
    events.write_text(
        "user,item,event,timestamp\nana,birds/owl,like,1767225600\nana,sounds/rain,view,1767225660\n"
        "bo,recipes/pasta,like,1767225720\n"
    )
    code, out, err = run(capsys, "import-interactions", str(events), "--db", db, "--json")
    assert code == 0 and json.loads(out)["added"] == 3, err
    code, out, _ = run(capsys, "recommend", "ana", "--db", db, "-k", "2", "--json")
    recs = json.loads(out)
    assert code == 0 and len(recs["items"]) == 2 and not {"birds/owl", "sounds/rain"} & {r["id"] for r in recs["items"]}
    code, out, _ = run(capsys, "train", "--db", db, "--only", "fusion", "--epochs", "2", "--json")
    assert code == 0, out
    code, out, _ = run(capsys, "forget", "bo", "--db", db, "--json")
    assert code == 0 and json.loads(out)["events"] == 1
    code, out, _ = run(capsys, "recommend", "bo", "--db", db, "--json")
    assert code == 0 and "cold" in json.dumps(json.loads(out)).lower()


def test_the_service_serves_the_s3_database(ingested, tmp_path):
    from fastapi.testclient import TestClient

    from mmrec.service import create_app

    with TestClient(create_app(ingested["s3"])) as client:
        assert client.get("/health").status_code == 200
        assert client.get("/items/birds/owl").json()["title"] == "Great horned owl"
        hits = client.post("/similar", json={"text": "an owl hooting at night", "k": 2}).json()
        assert len(hits["results"]) == 2
        assert client.get("/items/birds/owl/media/image").status_code == 200  # the catalog is on this machine
        moved = Path(ingested["catalog"]).rename(tmp_path / "elsewhere")  # as on a server without the media
        try:
            r = client.get("/items/birds/owl/media/image")
            assert r.status_code == 404 and "not available" in r.json()["detail"] and str(tmp_path) not in r.text
        finally:
            moved.rename(ingested["catalog"])
