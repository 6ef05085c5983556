"""Fusion of per-modality vectors into one item vector.

The attention fusion layer arrives with the fusion issue; this package depends
on ``encoders`` only and never imports ``mmrec``.
"""
