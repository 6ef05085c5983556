"""openclipart SVGs: their metadata (title, description, keywords, creator), the titled
candidates of a whole library in a seeded, category-balanced order, and rendering one
drawing to a square image."""

from __future__ import annotations

import collections
import html
import io
import math
import os
import random
import re
from dataclasses import dataclass

import numpy as np

STOP_KEYWORDS = {
    "",
    "hash",
    "unsorted",
    "openclipart",
    "clipart",
    "clip art",
    "svg",
    "image",
    "media",
    "inkscape",
    "png",
    "new",
    "various",
    "misc",
}
GENERIC_TITLE_RE = re.compile(
    r"(collection|theme|iconset|icon set|icons\b|^clipart by|submission|sibmission|^r\d+\b|"
    r"general$|various|gramastar|^untitled|^unnamed|^image\d*$|^drawing\d*$|^svg\b|\bsvg$)",
    re.I,
)
CARD_SUITS = {"c": "clubs", "d": "diamonds", "h": "hearts", "s": "spades"}
CARD_RANKS = {
    "a": "Ace",
    "j": "Jack",
    "q": "Queen",
    "k": "King",
    "2": "Two",
    "3": "Three",
    "4": "Four",
    "5": "Five",
    "6": "Six",
    "7": "Seven",
    "8": "Eight",
    "9": "Nine",
    "10": "Ten",
}


# ======================================================================================
# SVG metadata
# ======================================================================================

_AGENT_RE = re.compile(r"<dc:(publisher|creator|rights|contributor)\b.*?</dc:\1>", re.S | re.I)
_META_RE = re.compile(r"<metadata\b.*?</metadata>", re.S | re.I)
_SUBJ_RE = re.compile(r"<dc:subject\b.*?</dc:subject>", re.S | re.I)
_LI_RE = re.compile(r"<rdf:li\b[^>]*>(.*?)</rdf:li>", re.S | re.I)
_TAG_CACHE: dict[str, re.Pattern] = {}


def _clean(s: str) -> str:
    s = re.sub(r"<!\[CDATA\[(.*?)\]\]>", r"\1", s, flags=re.S)
    s = re.sub(r"<[^>]+>", " ", s)
    s = html.unescape(html.unescape(s))
    s = "".join(ch if ch.isprintable() else " " for ch in s)
    return re.sub(r"\s+", " ", s).strip()


def _dc(name: str, s: str) -> str:
    pat = _TAG_CACHE.get(name)
    if pat is None:
        pat = _TAG_CACHE[name] = re.compile(rf"<dc:{name}\b[^>]*?(?:/>|>(.*?)</dc:{name}\s*>)", re.S | re.I)
    m = pat.search(s)
    return _clean(m.group(1) or "") if m else ""


def parse_svg_metadata(data: str) -> dict:
    m = _META_RE.search(data)
    md = m.group(0) if m else ""
    creator = ""
    cm = re.search(r"<dc:creator\b.*?</dc:creator>", md, re.S | re.I)
    if cm:
        creator = _dc("title", cm.group(0))
    body = _AGENT_RE.sub(" ", md)
    title = _dc("title", body)
    if not title:  # some SVGs only have a top-level <title>
        tm = re.search(r"<(?:svg:)?title\b[^>]*>(.*?)</(?:svg:)?title>", data[:20000], re.S | re.I)
        title = _clean(tm.group(1)) if tm else ""
    desc = _dc("description", body)
    sm = _SUBJ_RE.search(body)
    kws: list[str] = []
    if sm:
        lis = _LI_RE.findall(sm.group(0))
        raw = lis if lis else [_clean(sm.group(0))]
        for k in raw:
            for part in re.split(r"[,;]", _clean(k)):
                kws.append(part)
    return {"title": title, "description": desc, "keywords": kws, "creator": creator, "date": _dc("date", body)}


def clean_keywords(kws: list[str], creator: str = "") -> list[str]:
    out: list[str] = []
    seen = {creator.strip().lower()} if creator else set()
    for k in kws:
        k = k.strip().strip(".").lower().replace("_", " ")
        k = re.sub(r"\s+", " ", k)
        if k.startswith("hash(") or k in STOP_KEYWORDS or len(k) > 40 or len(k) < 2:
            continue
        if re.fullmatch(r"[\W\d_]+", k):
            continue
        if k not in seen:
            seen.add(k)
            out.append(k)
    return out[:15]


def clean_description(d: str) -> str:
    d = re.sub(r"https?://\S+|www\.\S+", "", d)
    d = re.sub(r"\s+", " ", d).strip(" :;,-")
    if re.match(r"(eps|ai|wmf|pdf|dxf)\b.*\bconverted\b|converted from", d, re.I) or len(d) < 3:
        return ""
    return d


def title_from_filename(stem: str, relpath: str, creator: str = "") -> str:
    s = stem
    m = re.fullmatch(r"star_(\d+)pt(\d+)step", s)
    if m:
        return f"{int(m.group(1))}-point star, step {int(m.group(2))}"
    m = re.fullmatch(r"([a-z]+)_([cdhs])_(a|j|q|k|\d+)", s)
    if m and "/cards/" in relpath:
        return f"{CARD_RANKS.get(m.group(3), m.group(3))} of {CARD_SUITS[m.group(2)]} ({m.group(1)} deck)"
    m = re.fullmatch(r"([a-z]+)_jk_([rb])", s)
    if m and "/cards/" in relpath:
        return f"{'Red' if m.group(2) == 'r' else 'Black'} joker ({m.group(1)} deck)"
    m = re.fullmatch(r"back(\d+)", s)
    if m and "/cards/" in relpath:
        return f"Card back design {int(m.group(1))}"
    s = re.sub(r"(_01|_r|_)$", "", s)
    s = re.sub(r"^(gnome|stock|gtk|kde|bb)[-_]", "", s)
    s = re.sub(r"[_\-.]+", " ", s)
    s = re.sub(r"(?<=[a-z])(?=\d)", " ", s)  # folder2 -> folder 2
    words = s.split()
    # openclipart file names end with the (truncated) author name: drop those words
    ctoks = [w for w in re.findall(r"[a-z]+", creator.lower()) if len(w) >= 2]
    if len(words) > 1:

        def is_author(w: str) -> bool:
            w = w.lower()
            return w in ctoks or (len(w) >= 3 and w.isalpha() and any(c.startswith(w) for c in ctoks))

        kept = [w for w in words if not is_author(w) and w.lower() != "svg"]
        words = kept or words[:1]
    return " ".join(words)


def nice_title(t: str) -> str:
    t = re.sub(r"\s+", " ", t.replace("_", " ")).strip(" -.")
    if t and t[0].islower():
        t = t[0].upper() + t[1:]
    return t[:120]


def slugify(s: str, maxlen: int = 60) -> str:
    s = s.lower()
    s = re.sub(r"[^a-z0-9]+", "-", s).strip("-")
    return s[:maxlen].strip("-")


def word_tokens(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9]+", text.lower().replace("_", " ")))


@dataclass
class Candidate:
    idx: int
    svg_path: str
    relpath: str  # relative to the openclipart svg root
    category: str
    subcategory: str
    title: str
    description: str
    keywords: list
    creator: str
    date: str
    collection: str
    stem: str = ""
    # decided by the planner:
    long_audio: bool = False
    long_target_s: float = 0.0
    voice: str = "en-us"
    speed: int = 160
    pitch: int = 50
    speech_format: str = "wav"
    image_format: str = "png"
    sample: dict | None = None  # {"source","path","license","rule"}


def scan_openclipart(svg_root: str) -> tuple[list[Candidate], collections.Counter]:
    """Parse every SVG (deduplicating symlinks); return titled candidates + skip reasons."""
    skipped: collections.Counter = collections.Counter()
    seen_real: set[str] = set()
    raw = []
    for dp, dns, fns in os.walk(svg_root):
        dns.sort()
        for fn in sorted(fns):
            if not fn.lower().endswith(".svg"):
                continue
            p = os.path.join(dp, fn)
            rp = os.path.realpath(p)
            if rp in seen_real:
                skipped["duplicate (symlink)"] += 1
                continue
            seen_real.add(rp)
            try:
                with open(rp, "rb") as f:
                    data = f.read().decode("utf-8", "replace")
            except OSError:
                skipped["unreadable"] += 1
                continue
            try:
                meta = parse_svg_metadata(data)
            except Exception:  # noqa: BLE001 - odd files must not stop the scan
                skipped["metadata parse error"] += 1
                continue
            if not meta["title"]:
                skipped["no title"] += 1
                continue
            rel = os.path.relpath(p, svg_root)
            raw.append((p, rel, meta))
    # Titles shared by many files are collection names ("Lemon SVG theme", "card"...):
    # keep them as 'collection' and derive a specific title from the file name.
    freq = collections.Counter(m["title"].lower() for _, _, m in raw)
    cands: list[Candidate] = []
    for p, rel, meta in raw:
        parts = rel.split(os.sep)
        category = parts[0] if len(parts) > 1 else "misc"
        sub = "/".join(parts[1:-1])
        stem = os.path.splitext(parts[-1])[0]
        t = meta["title"]
        collection = ""
        m = re.match(r"clipart by [^-]+-\s*(.+)$", t, re.I)
        if m:
            collection, t = t, m.group(1)
        if freq[meta["title"].lower()] >= 5 or GENERIC_TITLE_RE.search(t):
            derived = title_from_filename(stem, "/" + rel, meta["creator"])
            if derived:
                collection = collection or t
                # a short generic title ("card", "stick man") is kept as a prefix unless the
                # file name already says it; collection names ("Lemon SVG theme") are dropped
                gwords = set(re.findall(r"[a-z]+", t.lower()))
                if not m and len(gwords) <= 2 and not GENERIC_TITLE_RE.search(t) and not gwords & word_tokens(derived):
                    t = f"{t} {derived}"
                else:
                    t = derived
        t = nice_title(t)
        if not t or not re.search(r"[A-Za-z]", t):
            skipped["unusable title"] += 1
            continue
        cands.append(
            Candidate(
                idx=-1,
                svg_path=p,
                relpath=rel,
                category=category,
                subcategory=sub,
                title=t,
                description=clean_description(meta["description"])[:600],
                keywords=clean_keywords(meta["keywords"], meta["creator"]),
                creator=meta["creator"][:100],
                date=meta["date"][:40],
                collection=collection[:120],
            )
        )
    return cands, skipped


def order_candidates(cands: list[Candidate], seed: int) -> list[Candidate]:
    """Seeded shuffle within each category, then round-robin across categories."""
    by_cat: dict[str, list[Candidate]] = collections.defaultdict(list)
    for c in sorted(cands, key=lambda c: c.relpath):
        by_cat[c.category].append(c)
    queues = []
    for cat in sorted(by_cat):
        lst = by_cat[cat]
        random.Random(f"{seed}|order|{cat}").shuffle(lst)
        queues.append(collections.deque(lst))
    ordered: list[Candidate] = []
    while queues:
        nxt = []
        for q in queues:
            ordered.append(q.popleft())
            if q:
                nxt.append(q)
        queues = nxt
    for i, c in enumerate(ordered):
        c.idx = i
    return ordered


# ======================================================================================
# Rendering
# ======================================================================================


def _svg2img(data: bytes, svg_path: str, **kw):
    import cairosvg
    from PIL import Image

    png = cairosvg.svg2png(bytestring=data, url=svg_path, **kw)
    return Image.open(io.BytesIO(png)).convert("RGBA")


def render_image(svg_path: str, size: int):
    """Render an SVG to a ``size`` x ``size`` RGB image, cropped to its drawing and centred.

    Many clip-art SVGs have a page much larger than the drawing, so the drawing's bounding
    box (non-transparent pixels) is found on a first render and, if small, the SVG is
    rendered again at a higher scale before cropping.  Transparent areas become white
    (or dark grey for drawings that are entirely white).  Returns (image, background).
    """
    from PIL import Image

    with open(svg_path, "rb") as f:
        data = f.read()
    img = _svg2img(data, svg_path, output_width=size)
    if img.height > size:
        img = _svg2img(data, svg_path, output_height=size)
    if img.width < 8 or img.height < 8:
        raise ValueError(f"degenerate render {img.size}")
    alpha = img.getchannel("A").point(lambda a: 255 if a > 8 else 0)
    bbox = alpha.getbbox()
    if bbox is None:
        raise ValueError("blank render (fully transparent)")
    inner = int(size * 0.92)
    bw, bh = bbox[2] - bbox[0], bbox[3] - bbox[1]
    f = min(inner / bw, inner / bh)
    if f > 1.25:
        # re-render larger so the cropped drawing is not upscaled from a tiny render
        f = min(f, 4096 / img.width, 4096 / img.height, math.sqrt(16e6 / (img.width * img.height)))
        big = _svg2img(data, svg_path, output_width=max(1, round(img.width * f)))
        fx, fy = big.width / img.width, big.height / img.height
        crop = (
            max(0, math.floor(bbox[0] * fx) - 2),
            max(0, math.floor(bbox[1] * fy) - 2),
            min(big.width, math.ceil(bbox[2] * fx) + 2),
            min(big.height, math.ceil(bbox[3] * fy) + 2),
        )
        img = big.crop(crop)
    else:
        img = img.crop(bbox)
    g = min(inner / img.width, inner / img.height)
    new_size = (max(1, round(img.width * g)), max(1, round(img.height * g)))
    if new_size != img.size:
        img = img.resize(new_size, Image.LANCZOS)
    pos = ((size - img.width) // 2, (size - img.height) // 2)
    for name, bg in (("white", (255, 255, 255, 255)), ("dark grey", (40, 40, 40, 255))):
        canvas = Image.new("RGBA", (size, size), bg)
        canvas.alpha_composite(img, pos)
        rgb = canvas.convert("RGB")
        if float(np.asarray(rgb.convert("L"), dtype=np.float32).std()) >= 2.0:
            return rgb, name
    raise ValueError("blank render (no contrast)")
