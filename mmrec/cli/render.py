"""How the command line shows results as text: items, database info, matches, recommendations, evaluations.

Everything here only formats and prints what the engine returned; nothing opens a database or loads a
model, so these helpers stay cheap to import and the commands stay short. JSON output is not made here:
the commands print the engine's ``to_dict()`` or the rows themselves.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from mmrec.names import MODALITIES

if TYPE_CHECKING:
    from mmrec.recsys.recommend import RecommendResult
    from mmrec.recsys.search import Match

__all__ = [
    "format_item",
    "print_evaluation",
    "print_info",
    "print_item_table",
    "print_matches",
    "print_recommendations",
]

#: Widest id column of a listing; longer ids are cut so the titles stay aligned.
_ITEM_ID_WIDTH = 40
#: Widest id column of a match or recommendation list.
_RESULT_ID_WIDTH = 36
#: Characters of an item's text shown by ``mmrec items ID``.
_TEXT_PREVIEW = 300
#: Problems listed by ``mmrec info``; the count line always gives the total.
_MAX_PROBLEMS_SHOWN = 100


def format_item(item: dict[str, Any]) -> str:
    """One item as aligned ``field  value`` lines (``mmrec items ID``).

    Parameters
    ----------
    item : dict
        An item as returned by :meth:`mmrec.engine.Engine.item`.

    Returns
    -------
    str
        The lines, without a trailing newline.
    """
    lines = [f"id        {item['id']}", f"title     {item.get('title') or ''}"]
    mods = [m for m in MODALITIES if item.get(f"has_{m}")]
    lines.append(f"modalities {', '.join(mods) or 'none'}")
    if item.get("tags"):
        lines.append(f"tags      {', '.join(item['tags'])}")
    if item.get("metadata"):
        lines.append(f"metadata  {json.dumps(item['metadata'], ensure_ascii=False)}")
    for f in item.get("files") or []:
        lines.append(f"file      {f['role']:<8} {f['path']}")
    for m, labels in (item.get("labels") or {}).items():
        lines.append(f"{m} labels " + ", ".join(f"{x['label']} {x['score']:.2f}" for x in labels))
    if item.get("text"):
        text = item["text"].replace("\n", " ")
        lines.append(f"text      {text[:_TEXT_PREVIEW]}{'…' if len(text) > _TEXT_PREVIEW else ''}")
    for p in item.get("problems") or []:
        lines.append(f"problem   {p['path']}: {p['reason']}")
    lines.append(f"updated   {item.get('updated_at')}")
    return "\n".join(lines)


def print_item_table(rows: Sequence[dict[str, Any]]) -> None:
    """Print a listing: one line per item with its modalities (``TIA``, ``-`` where missing) and title.

    Parameters
    ----------
    rows : sequence of dict
        Listing rows as returned by :meth:`mmrec.engine.Engine.items`; at least one.
    """
    width = min(max(len(r["id"]) for r in rows), _ITEM_ID_WIDTH)
    print(f"{'id':<{width}}  mods  title")
    for r in rows:
        # One letter per modality (T, I, A), in the order of MODALITIES, so the column lines up.
        mods = "".join(m[0].upper() if r[f"has_{m}"] else "-" for m in MODALITIES)
        flag = "  !" if r.get("problems") else ""
        print(f"{r['id'][:width]:<{width}}  {mods}   {(r.get('title') or '')[:60]}{flag}")


def print_info(info: dict[str, Any]) -> None:
    """Print a database summary (``mmrec info``).

    Parameters
    ----------
    info : dict
        As returned by :meth:`mmrec.engine.Engine.info`; a database without items has no
        ``modalities`` key, and then only the counts, size and problems are shown.
    """
    print(f"database  {info['db']}")
    print(f"items     {info['items']}")
    if "modalities" in info:
        print("modality  " + ", ".join(f"{m} {n}" for m, n in info["modalities"].items()))
        for cat, n in info["catalogs"].items():
            print(f"catalog   {cat} ({n} items)")
        for m, e in info["encoders"].items():
            print(f"encoder   {m}: {e['spec']} = {e['model']}, {e['dim']}-d, weights {e['fingerprint']}")
        print(f"version   {info['version']}")
        fusion = info.get("fusion") or {}
        if fusion.get("version"):
            trained = f"trained v{fusion.get('version')}"
        elif fusion.get("pretrained"):
            trained = f"pretrained {fusion['pretrained']} (fine-tune with `mmrec train`)"
        else:
            trained = "untrained (run `mmrec train`)" + (f"; {fusion['note']}" if fusion.get("note") else "")
        print(f"fusion    {fusion.get('name', '?')} {trained}, weights {fusion.get('fingerprint', '?')}")
        print(f"users     {info.get('users', 0)} with {info.get('interactions', 0)} interactions")
        hybrids = info.get("hybrid_checkpoints") or []
        if hybrids:
            h = hybrids[-1]
            print(f"hybrid    v{h['version']} trained {h['created_at'][:19]} on {h.get('interactions')} interactions")
    size = info.get("size_bytes")
    if size is not None:
        print(f"size      {size / 2**20:.1f} MiB")
    consistency = info.get("consistency") or {}
    if consistency and not consistency.get("ok", True):
        out_of_step = []
        if consistency.get("duplicate_item_rows"):
            out_of_step.append(f"{consistency['duplicate_item_rows']} item id(s) stored twice")
        if consistency.get("fusion_refit_pending"):
            out_of_step.append("fused vectors half rewritten by an interrupted `mmrec train`")
        if consistency.get("profiles_behind_events"):
            out_of_step.append("profiles behind the event log (an interrupted import)")
        print(f"repair    {'; '.join(out_of_step)} — the next write command repairs it")
    print(f"problems  {len(info['problems'])}")
    for p in info["problems"][:_MAX_PROBLEMS_SHOWN]:
        print(f"  - {p['path']}: {p['reason']}")


def print_matches(matches: Sequence[Match], indent: str = "") -> None:
    """Print search results: score, id, the modality that matched, title.

    Parameters
    ----------
    matches : sequence of Match
        As returned by :meth:`mmrec.engine.Engine.similar`.
    indent : str, optional
        Put before every line (the demo nests results under the command it shows).
    """
    if not matches:
        print(f"{indent}no matching items")
        return
    width = min(max(len(m.id) for m in matches), _RESULT_ID_WIDTH)
    for m in matches:
        print(f"{indent}{m.score:6.3f}  {m.id:<{width}}  via {m.matched:<5}  {m.title[:50]}")


def print_recommendations(result: RecommendResult, indent: str = "") -> None:
    """Print a recommendation list, with the cold-start message and, when explained, why each item came.

    Parameters
    ----------
    result : RecommendResult
        As returned by :meth:`mmrec.engine.Engine.recommend`.
    indent : str, optional
        Put before every line.
    """
    if result.message:
        print(f"{indent}({result.message})")
    if not result.items:
        print(f"{indent}no items to recommend")
    width = min(max((len(r.id) for r in result.items), default=10), _RESULT_ID_WIDTH)
    for r in result.items:
        mods = ", ".join(f"{m} {w:.0%}" for m, w in sorted(r.modalities.items(), key=lambda x: -x[1]))
        via = f"  via {r.matched}" if r.matched else ""
        stars = f"  predicted {r.predicted_rating:.1f}★" if r.predicted_rating is not None else ""
        print(f"{indent}{r.score:6.3f}  {r.id:<{width}}  {r.title[:40]}{via}{stars}")
        if r.because:
            names = ", ".join(f"{b.item} ({b.event}{', ' + b.modality if b.modality else ''})" for b in r.because)
            print(f"{indent}        because you interacted with {names}; modalities: {mods}")


def print_evaluation(results: dict[str, Any], ks: tuple[int, ...]) -> None:
    """Print an offline evaluation: split sizes, a Markdown table of metrics, then fit times and tuned parameters.

    Parameters
    ----------
    results : dict
        As returned by :meth:`mmrec.engine.Engine.evaluate`.
    ks : tuple of int
        The metric cut-offs that were evaluated.
    """
    # Imported here: the evaluation module pulls in the recommender models, which `mmrec --help` must not load.
    from mmrec.recsys.evaluation import format_markdown

    split = results["split"]
    print(
        f"{split['protocol']}: train {split['train']['interactions']}, validation {split['valid']['interactions']}, "
        f"test {split['test']['interactions']} interactions"
    )
    some = next(iter(results["models"].values()), {})
    cands = split.get("test_candidates")
    print(f"{some.get('test', {}).get('users', 0)} test users; ranking {cands or 'all'} items, seen items masked\n")
    print(format_markdown(results, ks, metrics=("ndcg", "recall", "hit", "mrr", "coverage")))
    print()
    for name, entry in results["models"].items():
        params = ", ".join(f"{k}={v}" for k, v in (entry.get("params") or {}).items())
        ci = entry.get("test", {}).get(f"ndcg@{ks[0]}_ci")
        interval = f"; test NDCG@{ks[0]} 95 % CI over users {ci[0]:.4f}–{ci[1]:.4f}" if ci else ""
        print(f"{name}: fit {entry.get('fit_seconds', 0):.1f} s{interval}" + (f"; {params}" if params else ""))
