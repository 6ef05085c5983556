"""The demo catalog builder behind ``scripts/build_demo_assets.py``: ``items`` (the catalog),
``sources`` (pinned packages, downloads, licence evidence), ``convert`` (pictures) and
``build`` (writing ``assets/demo/`` and validating it)."""
