"""Fusion of per-modality vectors into one item vector in a shared space.

* :mod:`fusion.bridge` — zero-shot ConSE bridge from class scores into the text space;
* :mod:`fusion.layers` — fusion layers (``mean``, ``attention``) and their registry ``FUSIONS``
  (an :class:`encoders.registries.Registry`);
* :mod:`fusion.train` — contrastive training on a catalog's stored vectors;
* :mod:`fusion.pretrained` — the layer pretrained on public media that ships with the package.

This package depends on ``encoders`` (and torch) only; it never imports ``mmrec``.
"""
