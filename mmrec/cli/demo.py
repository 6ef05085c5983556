"""``mmrec demo``: ingest the bundled demo catalog and show labels, cross-modal searches and recommendations.

The demo is repeatable: a second run ingests nothing new and records the sample user's interactions at the
same fixed times, so it prints the same results.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mmrec.cli.commands import open_engine
from mmrec.cli.render import print_matches, print_recommendations
from mmrec.names import MODALITIES

__all__ = ["DEMO_DB", "cmd_demo", "demo_catalog"]

#: Database folder ``mmrec demo`` writes to unless ``--db`` is given.
DEMO_DB = "mmrec-demo-db"

#: Items whose labels the demo prints.
_LABELLED_ITEMS = 8
#: Query kinds given as a file path (shown relative to the catalog): every modality but text.
_FILE_KINDS = tuple(m for m in MODALITIES if m != "text")
#: Unix time of the sample user's first interaction; fixed so the demo prints the same thing every run.
_FIRST_INTERACTION = 1_760_000_000


def demo_catalog() -> Path:
    """The bundled demo catalog, ``assets/demo`` of a source checkout (it may be missing from a wheel).

    Returns
    -------
    Path
    """
    return Path(__file__).resolve().parent.parent.parent / "assets" / "demo"


def cmd_demo(args: argparse.Namespace) -> int:
    """``mmrec demo``: ingest the demo catalog into ``--db``, then run a tour of searches and recommendations.

    Parameters
    ----------
    args : argparse.Namespace
        ``db``, ``quiet`` and ``fusion`` (how a new demo database's fusion layer starts).

    Returns
    -------
    int
        0; failures raise :class:`mmrec.errors.MMRecError`.
    """
    from mmrec.errors import CatalogError

    catalog = demo_catalog()
    if not catalog.is_dir():
        raise CatalogError(
            f"demo catalog not found at {catalog}; run `mmrec demo` from a source checkout (pip install -e .)"
        )
    engine = open_engine(args)
    print(f"Ingesting the demo catalog {catalog} into {args.db} …")
    report = engine.ingest(catalog, prune=True, progress=not args.quiet)
    print(report.format())
    fusion = engine.store.fusion_identity() or {}
    if fusion.get("version"):
        print(f"Fusion layer: trained v{fusion['version']} (`mmrec train`)")
    elif fusion.get("pretrained"):
        print(
            f"Fusion layer: {fusion['pretrained']}, pretrained on public media and shipped with mmrec (no training needed)"
        )
    else:
        print(
            "Fusion layer: the untrained mean of the modalities"
            + (f" ({fusion['note']})" if fusion.get("note") else "")
        )
    print("\nWhat the encoders see in a few items:")
    shown = 0
    for row in engine.items(limit=None):
        if not (row["has_image"] and row["has_audio"]):
            continue
        item = engine.item(row["id"], top_labels=2)
        labels = item["labels"]
        image = ", ".join(x["label"] for x in labels.get("image", []))
        audio = ", ".join(x["label"] for x in labels.get("audio", []))
        print(f"  {row['id']:<28} image: {image:<34} audio: {audio}")
        shown += 1
        if shown == _LABELLED_ITEMS:
            break
    demo_queries = [
        ("text", "an owl hooting in the dark forest", "any"),
        ("text", "a musical instrument with strings", "image"),
        ("image", str(catalog / "photos" / "chelsea_the_cat.jpg"), "audio"),
        ("image", str(catalog / "household" / "alarm_clock.png"), "audio"),
        ("audio", str(catalog / "animals" / "dog.mp3"), "any"),
        ("item", "music/piano", "any"),
    ]
    for kind, value, modality in demo_queries:
        shown_value = Path(value).relative_to(catalog) if kind in _FILE_KINDS else value
        print(f"\nmmrec similar --{kind} {shown_value!s:<40} --modality {modality}")
        print_matches(engine.similar(**{kind: value}, k=3, modality=modality), indent="  ")
    user = "demo-user"
    history = [
        ("animals/cow", "like"),
        ("animals/sheep", "like"),
        ("animals/horse", "view"),
        ("music/violin", "like"),
        ("music/cello", "view"),
        ("food/pizza", "skip"),
    ]
    print(f"\nA sample user, {user!r}, records: " + ", ".join(f"{e} {i}" for i, e in history))
    for i, (item, event) in enumerate(history):
        engine.interact(user, item, event, at=_FIRST_INTERACTION + 3600 * i)  # fixed times: the demo is repeatable
    print(f"mmrec recommend {user} -k 6 --explain")
    print_recommendations(engine.recommend(user, 6, explain=True), indent="  ")
    print('\nA new user with an onboarding text: mmrec recommend newcomer --query "fresh fruit" -k 3')
    print_recommendations(engine.recommend("newcomer", 3, query="fresh fruit"), indent="  ")
    print(
        f'\nNext: mmrec similar --db {args.db} --text "..."  |  mmrec recommend USER --db {args.db}  |  mmrec info --db {args.db}'
    )
    return 0
