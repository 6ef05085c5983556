"""One media-catalog item, built in a worker process: the rendered drawing, a caption made
from the SVG's metadata, the audio clip and the JSON sidecar."""

from __future__ import annotations

import json
import os
import tempfile
import time

from .common import ItemTimeout, guarded
from .openclipart import Candidate, render_image
from .speech import make_audio


def _sentence_list(words: list[str]) -> str:
    if not words:
        return ""
    if len(words) == 1:
        return words[0]
    return ", ".join(words[:-1]) + " and " + words[-1]


def make_text(c: Candidate) -> str:
    where = c.category.replace("_", " ")
    if c.subcategory:
        where += " / " + c.subcategory.replace("_", " ").replace("/", " / ")
    desc = c.description.strip()
    first = c.title
    if desc and desc.lower().strip(". ") != c.title.lower().strip(". ") and desc.lower() not in c.title.lower():
        first += ": " + desc.rstrip(". ") + "."
    else:
        first += "."
    kws = [k for k in c.keywords if k.lower() != c.title.lower()][:8]
    second = f"Public-domain clip art from the {where} collection"
    if kws:
        second += f", tagged {_sentence_list(kws)}"
    second += "."
    if c.creator and c.creator.lower() not in ("public domain", "open clip art project", "unknown"):
        second += f" Drawn by {c.creator}."
    return first + "\n" + second + "\n"


def build_item(c: Candidate, out_root: str, image_size: int, source_versions: dict) -> dict:
    """Worker entry point. Returns a result dict; on failure writes nothing."""
    t0 = time.time()
    folder = os.path.join(out_root, c.category)
    base = os.path.join(folder, c.stem)

    def work(written: list[str]) -> dict:
        try:
            img, background = render_image(c.svg_path, image_size)
        except ItemTimeout:
            raise
        except Exception as e:  # noqa: BLE001
            return {"idx": c.idx, "ok": False, "reason": f"render: {type(e).__name__}: {str(e)[:80]}"}
        os.makedirs(folder, exist_ok=True)
        img_path = f"{base}.{c.image_format}"
        if c.image_format == "jpg":
            img.save(img_path, "JPEG", quality=90, optimize=True)
        else:
            img.save(img_path, "PNG", optimize=False, compress_level=6)
        written.append(img_path)
        text = make_text(c)
        with open(f"{base}.txt", "w", encoding="utf-8") as f:
            f.write(text)
        written.append(f"{base}.txt")
        with tempfile.TemporaryDirectory(prefix="mmrec_cat_") as tmpdir:
            audio = make_audio(c, base, tmpdir)
        written.append(os.path.join(folder, audio["file"]))
        tags = list(c.keywords)
        sidecar = {
            "title": c.title,
            "tags": tags,
            "category": c.category,
            "subcategory": c.subcategory or None,
            "description": c.description or None,
            "creator": c.creator or None,
            "date": c.date or None,
            "collection": c.collection or None,
            "image": {
                "file": os.path.basename(img_path),
                "width": img.width,
                "height": img.height,
                "source": f"openclipart-svg {source_versions.get('openclipart', '')}: svg/{c.relpath}",
                "license": "Public Domain (openclipart)",
                "background": background,
            },
            "text": {
                "file": os.path.basename(f"{base}.txt"),
                "source": "generated from the SVG's dc:title, dc:description, dc:subject",
            },
            "audio": audio,
            "source_svg": c.relpath,
        }
        with open(f"{base}.json", "w", encoding="utf-8") as f:
            json.dump(sidecar, f, ensure_ascii=False, indent=1)
        written.append(f"{base}.json")
        sizes = sum(os.path.getsize(p) for p in written)
        return {
            "idx": c.idx,
            "ok": True,
            "item": f"{c.category}/{c.stem}",
            "files": written,
            "bytes": sizes,
            "audio_kind": audio["kind"],
            "audio_ext": audio["file"].rsplit(".", 1)[1],
            "duration_s": audio["duration_s"],
            "long": c.long_audio,
            "image_format": c.image_format,
            "category": c.category,
            "sample_source": audio.get("sample_source"),
            "secs": time.time() - t0,
        }

    r = guarded(60, work, reason_chars=120)
    if not r["ok"]:
        r["idx"] = c.idx
    return r
