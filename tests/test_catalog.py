"""Scanning catalog folders and manifests (names only, nothing decoded)."""

from __future__ import annotations

import json
import os

import pytest
from media_factory import small_catalog, write_image, write_json, write_text

from mmrec.catalog.scan import scan_catalog
from mmrec.errors import CatalogError


def test_files_sharing_a_stem_form_one_item(tmp_path):
    scan = scan_catalog(small_catalog(tmp_path))
    items = {i.id: i for i in scan.items}
    assert sorted(items) == ["birds/duck", "birds/owl", "recipes/board", "recipes/pasta", "sounds/rain"]
    owl = items["birds/owl"]
    assert owl.files == {
        "image": "birds/owl.png",
        "audio": "birds/owl.wav",
        "text": "birds/owl.txt",
        "sidecar": "birds/owl.json",
    }
    assert items["sounds/rain"].text_files == ["sounds/rain.md"]
    assert scan.problems == []


def test_ids_are_stable_across_scans(tmp_path):
    small_catalog(tmp_path)
    assert [i.id for i in scan_catalog(tmp_path).items] == [i.id for i in scan_catalog(tmp_path).items]


def test_other_files_and_docs_are_ignored(tmp_path):
    write_text(tmp_path / "a.txt", "text")
    write_text(tmp_path / "README.md", "about this catalog")
    (tmp_path / "notes.pdf").write_bytes(b"%PDF")
    (tmp_path / ".hidden.png").write_bytes(b"x")
    write_json(tmp_path / "lonely.json", {"title": "no media"})
    scan = scan_catalog(tmp_path)
    assert [i.id for i in scan.items] == ["a"]
    assert scan.ignored_files == 3


def test_two_images_for_one_stem_is_a_problem(tmp_path):
    write_image(tmp_path / "x.png")
    write_image(tmp_path / "x.jpg")
    scan = scan_catalog(tmp_path)
    assert scan.items[0].image == "x.jpg"
    assert "several image files" in scan.problems[0].reason


def test_missing_and_non_folder_paths(tmp_path):
    with pytest.raises(CatalogError, match="does not exist"):
        scan_catalog(tmp_path / "nope")
    write_text(tmp_path / "f.txt", "x")
    with pytest.raises(CatalogError, match="not a folder"):
        scan_catalog(tmp_path / "f.txt")


def test_empty_catalog(tmp_path):
    scan = scan_catalog(tmp_path)
    assert scan.items == [] and scan.problems == []


def test_symlink_loop_is_reported_not_followed_forever(tmp_path):
    write_text(tmp_path / "sub" / "a.txt", "hello")
    os.symlink(tmp_path, tmp_path / "sub" / "back")  # sub/back -> catalog root
    os.symlink("self.jpg", tmp_path / "self.jpg")  # a link to itself
    scan = scan_catalog(tmp_path)
    assert [i.id for i in scan.items] == ["sub/a"]
    reasons = {p.path: p.reason for p in scan.problems}
    assert "symlink loop" in reasons["sub/back"]
    assert "symlink loop" in reasons["self.jpg"]


def test_broken_symlink(tmp_path):
    os.symlink(tmp_path / "gone.png", tmp_path / "dead.png")
    scan = scan_catalog(tmp_path)
    assert scan.items == []
    assert scan.problems[0].reason == "broken symlink"


def test_symlinked_folder_is_followed(tmp_path):
    write_text(tmp_path / "real" / "a.txt", "hello")
    cat = tmp_path / "cat"
    cat.mkdir()
    os.symlink(tmp_path / "real", cat / "linked")
    assert [i.id for i in scan_catalog(cat).items] == ["linked/a"]


def test_jsonl_manifest(tmp_path):
    write_image(tmp_path / "img" / "o.png")
    rows = [
        {"id": "owl-1", "title": "Owl", "text": "hoots", "image": "img/o.png", "tags": ["bird"], "price": 3},
        {"image": "img/o.png", "title": "no id: derived from the path"},
        "not an object",
        {"title": "neither id nor file"},
        {"id": "owl-1", "title": "duplicate"},
    ]
    lines = [json.dumps(r) for r in rows] + ["{broken json"]
    (tmp_path / "catalog.jsonl").write_text("\n".join(lines))
    write_image(tmp_path / "stray.png")  # not in the manifest: not an item
    scan = scan_catalog(tmp_path)
    assert scan.manifest == "catalog.jsonl"
    items = {i.id: i for i in scan.items}
    assert sorted(items) == ["img/o", "owl-1"]
    assert items["owl-1"].fields == {"title": "Owl", "text": "hoots", "tags": ["bird"], "metadata": {"price": 3}}
    assert items["owl-1"].image == "img/o.png"
    where = sorted(p.path for p in scan.problems)
    assert where == ["catalog.jsonl:3", "catalog.jsonl:4", "catalog.jsonl:5", "catalog.jsonl:6"]


def test_csv_manifest_with_extra_columns(tmp_path):
    (tmp_path / "catalog.csv").write_text(
        "id,title,audio,tags,genre\nsong1,First song,a/s1.ogg,rock;live,rock\nsong2,Second,,pop,pop\n"
    )
    scan = scan_catalog(tmp_path)
    s1, s2 = scan.items
    assert s1.id == "song1" and s1.audio == "a/s1.ogg" and s1.fields["tags"] == ["rock", "live"]
    assert s1.fields["metadata"] == {"genre": "rock"}
    assert s2.files == {}


def test_manifest_that_is_not_utf8(tmp_path):
    (tmp_path / "catalog.csv").write_bytes("id,title\n1,Crème\n".encode("utf-16-le"))
    with pytest.raises(CatalogError, match="not UTF-8"):
        scan_catalog(tmp_path)
