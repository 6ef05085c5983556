"""Fusion layers pretrained on public media, shipped inside the package.

Each layer is two files in this folder: ``<name>.pt`` (registry name, config and weights,
stored as float16 to keep the wheel small) and ``<name>.json``, its provenance: the sources
and their licences, the corpus size, the seed, the held-out results, the encoders it was
trained on and the fingerprint of the weights *as loaded* (float32 after the round trip).

A pretrained layer only means something for the encoders it was trained on: its heads read
those encoders' features and their ConSE bridges. :func:`encoder_mismatch` says why a set of
encoders cannot use it. ``benchmarks/pretrain_space.py`` makes the files.
"""

from __future__ import annotations

import io
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

#: The folder the shipped layers live in.
PRETRAINED_DIR = Path(__file__).resolve().parent
#: The layer a new database starts from unless asked otherwise.
DEFAULT_PRETRAINED = "mmrec-space-v3"


class PretrainedError(ValueError):
    """A pretrained layer that is missing, unreadable or not the one its provenance describes."""


@dataclass(frozen=True)
class Pretrained:
    """One shipped layer and what is known about it.

    Attributes
    ----------
    name : str
        File stem, e.g. ``"mmrec-space-v3"``.
    layer : fusion.layers.FusionLayer
        In eval mode, float32.
    provenance : dict
        The ``<name>.json`` contents.
    """

    name: str
    layer: Any
    provenance: dict[str, Any]


def available(folder: Path = PRETRAINED_DIR) -> list[str]:
    """Names of the layers in ``folder`` that have both their weights and their provenance."""
    return sorted(p.stem for p in folder.glob("*.json") if p.with_suffix(".pt").is_file())


def _check_name(name: str, folder: Path) -> None:
    names = available(folder)
    if name not in names:
        raise PretrainedError(f"no pretrained fusion layer {name!r}; shipped: {', '.join(names) or 'none'}")


def provenance(name: str = DEFAULT_PRETRAINED, folder: Path = PRETRAINED_DIR) -> dict[str, Any]:
    """The provenance of a shipped layer (reads only the JSON file: cheap, no torch).

    Raises
    ------
    PretrainedError
        No such layer, or its provenance is not a JSON object.
    """
    _check_name(name, folder)
    try:
        prov = json.loads((folder / f"{name}.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise PretrainedError(f"provenance of pretrained layer {name!r} is unreadable: {e}") from e
    if not isinstance(prov, dict) or "fingerprint" not in prov:
        raise PretrainedError(f"provenance of pretrained layer {name!r} has no fingerprint")
    return prov


def load_pretrained(name: str = DEFAULT_PRETRAINED, folder: Path = PRETRAINED_DIR) -> Pretrained:
    """Load a shipped layer and check its weights against the fingerprint in its provenance.

    Raises
    ------
    PretrainedError
        No such layer, unreadable weights, or weights whose fingerprint differs from the
        recorded one (a corrupted or swapped file).
    """
    prov = provenance(name, folder)  # first: an unknown name fails without importing torch
    import torch

    from fusion.layers import FusionConfig, create_fusion

    try:
        blob = torch.load(folder / f"{name}.pt", map_location="cpu", weights_only=True)
        layer = create_fusion(blob["name"], FusionConfig.from_dict(blob["config"]))
        layer.load_state_dict({k: v.float() for k, v in blob["state"].items()})
    except Exception as e:  # noqa: BLE001  (any failure to read the file means the same thing here)
        raise PretrainedError(f"pretrained fusion layer {name!r} cannot be loaded: {e}") from e
    layer.eval()
    found = layer.fingerprint()
    if found != prov["fingerprint"]:
        raise PretrainedError(
            f"pretrained fusion layer {name!r} has weights {found}, but its provenance records {prov['fingerprint']}"
        )
    return Pretrained(name, layer, prov)


def round_trip(layer: Any) -> Any:
    """``layer`` with its weights rounded to float16 and back: exactly what :func:`load_pretrained` returns."""
    import copy

    import torch

    out = copy.deepcopy(layer)
    with torch.no_grad():
        for p in out.state_dict().values():
            p.copy_(p.half().float())
    return out.eval()


def save_pretrained(layer: Any, name: str, prov: dict[str, Any], folder: Path = PRETRAINED_DIR) -> dict[str, Any]:
    """Write ``<name>.pt`` (float16 weights) and ``<name>.json`` (``prov`` plus name, config, fingerprint).

    Returns
    -------
    dict
        The provenance as written.
    """
    import torch

    shipped = round_trip(layer)
    state = {k: v.detach().cpu().half() for k, v in shipped.state_dict().items()}
    buf = io.BytesIO()
    torch.save({"name": shipped.registry_name, "config": asdict(shipped.config), "state": state}, buf)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.pt").write_bytes(buf.getvalue())
    prov = {
        **prov,
        "name": name,
        "fusion": shipped.registry_name,
        "config": asdict(shipped.config),
        "fingerprint": shipped.fingerprint(),
    }
    (folder / f"{name}.json").write_text(json.dumps(prov, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return prov


def encoder_mismatch(prov: dict[str, Any], identities: dict[str, dict[str, Any]]) -> str | None:
    """Why encoders with ``identities`` (modality → ``EncoderIdentity.to_dict()``) cannot use the layer, or None.

    The registry name and the weights fingerprint must both match: another model, or the same
    model with other weights (e.g. int8), produces features the heads were not trained on.
    """
    wanted = prov.get("encoders") or {}
    for m, ident in sorted(wanted.items()):
        have = identities.get(m) or {}
        if (have.get("name"), have.get("fingerprint")) != (ident.get("name"), ident.get("fingerprint")):
            return (
                f"the pretrained layer {prov.get('name')!r} was trained on {m} encoder {ident.get('name')!r} "
                f"(weights {ident.get('fingerprint')}), not {have.get('name')!r} (weights {have.get('fingerprint')})"
            )
    return None
