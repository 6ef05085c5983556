"""Recommendations on the real demo catalog with the real encoders."""

from __future__ import annotations

import json
import shutil

import pytest
from conftest import DEMO

from mmrec import Engine
from mmrec.errors import InvalidArgumentError, ItemNotFoundError

pytestmark = pytest.mark.skipif(not DEMO.is_dir(), reason="demo catalog not present")

ANIMALS = ["animals/cow", "animals/sheep", "animals/horse", "animals/pig"]


@pytest.fixture(scope="module")
def ingested(tmp_path_factory, real_encoders):
    path = tmp_path_factory.mktemp("rec") / "db"
    Engine(str(path)).ingest(DEMO)
    return path


@pytest.fixture
def engine(ingested, tmp_path):
    copy = tmp_path / "db"
    shutil.copytree(ingested, copy)
    return Engine(str(copy))


def like_all(engine, user, items, event="like", start=1_760_000_000):
    for i, item in enumerate(items):
        engine.interact(user, item, event, at=start + 60 * i)


def ids(result):
    return [r.id for r in result.items]


def test_likes_of_one_kind_bring_more_of_that_kind(engine):
    like_all(engine, "u", ANIMALS[:3])
    result = engine.recommend("u", 5)
    assert result.strategy == "profile" and not result.cold_start
    animals = [i for i in ids(result) if i.startswith("animals/")]
    assert len(animals) >= 3, ids(result)


def test_consumed_items_never_come_back_unless_asked(engine):
    like_all(engine, "u", ANIMALS[:3])
    assert not set(ids(engine.recommend("u", 40))) & set(ANIMALS[:3])
    assert set(ANIMALS[:3]) <= set(ids(engine.recommend("u", 40, include_seen=True)))


def test_a_dislike_pushes_that_kind_down(engine):
    like_all(engine, "u", ["animals/cow", "music/violin", "music/cello"])
    before = engine.recommend("u", 40)
    like_all(engine, "u", ["music/trumpet", "music/flute"], event="dislike", start=1_760_001_000)
    after = engine.recommend("u", 40)
    common = [i for i in ids(before) if i in ids(after)]  # the disliked items themselves are now excluded
    rank = lambda result: [i for i in ids(result) if i in common]  # noqa: E731
    music = [i for i in common if i.startswith("music/")]
    assert music
    mean_rank = lambda order: sum(order.index(i) for i in music) / len(music)  # noqa: E731
    assert mean_rank(rank(after)) > mean_rank(rank(before))
    score = lambda result: {r.id: r.score for r in result.items}  # noqa: E731
    assert all(score(after)[i] < score(before)[i] for i in music)


def test_diverse_history_gets_both_interests(engine):
    like_all(engine, "u", ["animals/cow", "animals/sheep", "music/violin", "music/cello"])
    top = ids(engine.recommend("u", 6))
    assert any(i.startswith("animals/") for i in top) and any(i.startswith("music/") for i in top)


def test_explanations_name_the_right_history_items(engine):
    like_all(engine, "u", ["animals/cow", "animals/sheep", "music/violin", "music/cello"])
    result = engine.recommend("u", 8, explain=True)
    checked = 0
    for rec in result.items:
        assert rec.because, rec.id
        assert abs(sum(rec.modalities.values()) - 1) < 1e-3 and rec.matched in ("text", "image", "audio")
        top = rec.because[0].item
        if rec.id.startswith("music/"):
            assert top.startswith("music/"), (rec.id, rec.because)
            checked += 1
        elif rec.id.startswith("animals/"):
            assert top.startswith("animals/"), (rec.id, rec.because)
            checked += 1
    assert checked >= 2


def test_explaining_changes_no_item_score_or_matched_modality(engine):
    like_all(engine, "u", ["animals/cow", "animals/sheep", "music/violin", "music/cello"])
    plain, explained = engine.recommend("u", 8), engine.recommend("u", 8, explain=True)
    assert [(r.id, r.score, r.interest, r.matched) for r in plain.items] == [
        (r.id, r.score, r.interest, r.matched) for r in explained.items
    ]
    assert {r.matched for r in plain.items} - {""}


def test_filter_applies_inside_the_search(engine):
    like_all(engine, "u", ANIMALS[:3])
    result = engine.recommend("u", 5, where="id LIKE 'household/%'")
    assert len(result.items) == 5 and all(i.startswith("household/") for i in ids(result))
    audio = engine.recommend("u", 5, modality="audio")
    assert all(engine.item(i)["has_audio"] for i in ids(audio))


def test_new_item_without_interactions_can_be_recommended(engine, tmp_path):
    catalog = tmp_path / "cat"
    shutil.copytree(DEMO, catalog)
    shutil.copy(catalog / "animals" / "cow.png", catalog / "animals" / "calf.png")
    shutil.copy(catalog / "animals" / "cow.mp3", catalog / "animals" / "calf.mp3")
    (catalog / "animals" / "calf.txt").write_text("A young calf, a baby cow, mooing in a farm field.")
    assert engine.ingest(catalog).added == 1  # the other ids already belong to the demo catalog
    like_all(engine, "u", ["animals/cow", "animals/sheep"])
    result = engine.recommend("u", 3, explain=True)
    assert ids(result)[0] == "animals/calf"
    assert result.items[0].because[0].item == "animals/cow"


def test_diversity_spreads_the_list(engine):
    like_all(engine, "u", ANIMALS[:3])
    plain = engine.recommend("u", 6)
    varied = engine.recommend("u", 6, diversity=0.8)
    cats = lambda r: len({i.split("/")[0] for i in ids(r)})  # noqa: E731
    assert cats(varied) >= cats(plain)
    assert ids(varied) != ids(plain)


def test_profile_updates_the_moment_an_interaction_arrives(engine):
    like_all(engine, "u", ["animals/cow"])
    first = ids(engine.recommend("u", 3))
    engine.interact("u", "music/violin", "purchase", at=1_760_100_000)
    engine.interact("u", "music/cello", "purchase", at=1_760_100_060)
    assert ids(engine.recommend("u", 3)) != first


def test_cold_start(engine):
    unknown = engine.recommend("nobody", 4)
    assert unknown.cold_start and unknown.strategy == "newest" and "unknown user 'nobody'" in unknown.message
    assert len(unknown.items) == 4
    like_all(engine, "fan", ["photos/espresso", "food/pizza"])
    like_all(engine, "fan2", ["photos/espresso"])
    popular = engine.recommend("nobody", 2)
    assert popular.strategy == "popular" and ids(popular) == ["photos/espresso", "food/pizza"]
    onboard = engine.recommend("nobody", 3, query="a farm animal that moos")
    assert onboard.strategy == "query" and ids(onboard)[0] == "animals/cow"
    skipper = "skipper"
    engine.interact(skipper, "animals/cow", "skip", at=1_760_000_000)
    result = engine.recommend(skipper, 3)
    assert result.cold_start and "no positive history" in result.message and "animals/cow" not in ids(result)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"k": 0}, "k must be"),
        ({"modality": "smell"}, "unknown modality"),
        ({"diversity": 2}, "diversity"),
        ({"where": "nope ="}, "invalid filter"),
    ],
)
def test_bad_recommend_arguments(engine, kwargs, message):
    like_all(engine, "u", ["animals/cow"])
    with pytest.raises(InvalidArgumentError, match=message):
        engine.recommend("u", **kwargs)


def test_bad_interactions(engine):
    with pytest.raises(ItemNotFoundError):
        engine.interact("u", "no/such/item", "like")
    with pytest.raises(InvalidArgumentError, match="unknown event"):
        engine.interact("u", "animals/cow", "teleport")
    with pytest.raises(InvalidArgumentError, match="timestamp"):
        engine.interact("u", "animals/cow", "like", at="whenever")
    with pytest.raises(InvalidArgumentError, match="missing user"):
        engine.interact(" ", "animals/cow", "like")


def test_import_reports_bad_rows_and_never_double_counts(engine, tmp_path):
    csv = tmp_path / "inter.csv"
    csv.write_text(
        "user,item,event,rating,timestamp\n"
        "alice,animals/cow,like,,2026-01-01T10:00:00Z\n"
        "alice,animals/sheep,,5,1767261600\n"
        ",animals/cow,like,,2026-01-01\n"
        "bob,animals/unicorn,like,,2026-01-01\n"
        "bob,animals/cow,dance,,2026-01-01\n"
        "bob,animals/cow,like,,next tuesday\n"
        "bob,music/piano,view,,2026-01-02\n"
    )
    report = engine.import_interactions(csv)
    assert (report.rows, report.added, report.users) == (7, 3, 2)
    assert sorted(b.row for b in report.bad) == [4, 5, 6, 7]
    again = engine.import_interactions(csv)
    assert (again.added, again.duplicates) == (0, 3)
    assert engine.users().interactions().count_rows() == 3
    assert engine.users().profile("alice").events == 2
    with pytest.raises(InvalidArgumentError, match="--strict"):
        engine.import_interactions(csv, strict=True)


def test_import_jsonl_and_parquet(engine, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    jsonl = tmp_path / "i.jsonl"
    jsonl.write_text(
        json.dumps({"user": "c", "item": "animals/cow", "event": "like", "timestamp": 1767225600}) + "\n{broken\n"
    )
    report = engine.import_interactions(jsonl)
    assert report.added == 1 and report.bad[0].row == 2
    pq.write_table(
        pa.table(
            {
                "user_id": ["d", "d"],
                "item_id": ["music/piano", "music/violin"],
                "rating": [5.0, 1.0],
                "ts": [1767225600, 1767225700],
            }
        ),
        tmp_path / "i.parquet",
    )
    assert engine.import_interactions(tmp_path / "i.parquet").added == 2
    assert engine.users().profile("d").negative is not None  # the 1-star rating


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("x.csv", None, "does not exist"),
        ("x.xlsx", b"PK", "unknown interactions format"),
        ("x.csv", "caf\xe9".encode("latin-1"), "not UTF-8"),
        ("x.parquet", b"not parquet", "cannot read Parquet"),
    ],
)
def test_unreadable_interaction_files(engine, tmp_path, name, content, message):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(InvalidArgumentError, match=message):
        engine.import_interactions(path)


def test_empty_file_imports_nothing(engine, tmp_path):
    (tmp_path / "e.csv").write_text("user,item,event,timestamp\n")
    report = engine.import_interactions(tmp_path / "e.csv")
    assert report.rows == 0 and report.added == 0


def test_cli(engine, capsys, tmp_path):
    from mmrec.cli import main

    db = engine.store.uri
    assert main(["interact", "cli-user", "animals/cow", "--event", "like", "--db", db]) == 0
    assert "recorded cli-user like animals/cow" in capsys.readouterr().out
    assert main(["recommend", "cli-user", "-k", "3", "--explain", "--db", db]) == 0
    out = capsys.readouterr().out
    assert "because you interacted with animals/cow (like, " in out
    assert main(["recommend", "cli-user", "-k", "2", "--json", "--db", db]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["strategy"] == "profile" and len(data["items"]) == 2
    assert main(["recommend", "ghost", "--db", db]) == 0
    assert "unknown user 'ghost'" in capsys.readouterr().out
    assert main(["interact", "cli-user", "nope", "--db", db]) == 1
    assert "no item with id 'nope'" in capsys.readouterr().err
    (tmp_path / "f.csv").write_text("user,item,event,timestamp\nz,animals/cow,like,2026-01-01\nz,bad,like,2026-01-01\n")
    assert main(["import-interactions", str(tmp_path / "f.csv"), "--db", db]) == 0
    assert "row 3: unknown item 'bad'" in capsys.readouterr().out
    assert main(["import-interactions", str(tmp_path / "f.csv"), "--db", db, "--strict"]) == 1
