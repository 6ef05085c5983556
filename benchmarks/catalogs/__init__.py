"""The catalog builders behind ``benchmarks/build_catalog.py`` (a media catalog: image, text and
audio per item) and ``benchmarks/build_eval_catalogs.py`` (labelled catalogs for retrieval quality).

Shared by both:

* ``common``: logging, the repository guard, staging an output folder, worker processes;
* ``sources``: the Debian, PyPI and npm packages the media comes from, and their licences;
* ``openclipart``: SVG metadata, the titled candidates in a seeded order, rendering;
* ``verify``: checking a built catalog file by file.

The media catalog: ``planning`` (voices, formats, matching recordings), ``speech`` (the audio
clip), ``media_item`` (one item, in a worker) and ``media_cli``.  The labelled catalogs:
``eval_openclipart``, ``eval_openmoji``, ``eval_sounds`` (with ``sound_labels``) and ``eval_cli``.
"""
