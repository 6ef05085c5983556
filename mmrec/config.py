"""Configuration as frozen dataclasses."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import timedelta

from encoders.registry import DEFAULT_ENCODERS

#: The database used when ``--db`` is not given: a folder in the working directory.
DEFAULT_DB = "mmrec-db"
#: Where derived data that is slow to compute (class-name embeddings of the bridges) is kept between runs.
DEFAULT_CACHE = "~/.cache/mmrec"


@dataclass(frozen=True)
class EncoderConfig:
    """Which encoder (registry name, optionally ``name:spec``) serves each modality."""

    text: str = DEFAULT_ENCODERS["text"]
    image: str = DEFAULT_ENCODERS["image"]
    audio: str = DEFAULT_ENCODERS["audio"]
    device: str = "cpu"

    def by_modality(self) -> dict[str, str]:
        return {"text": self.text, "image": self.image, "audio": self.audio}


@dataclass(frozen=True)
class LimitsConfig:
    """Limits that protect a run from hostile or broken files."""

    #: Files larger than this are refused before they are read.
    max_file_bytes: int = 512 * 1024 * 1024
    #: Images with more pixels are refused as decompression bombs (Pillow warns at 89 M).
    max_image_pixels: int = 64_000_000
    #: Text files larger than this are refused.
    max_text_bytes: int = 4 * 1024 * 1024
    #: Text kept per item in the store (characters).
    max_stored_text_chars: int = 20_000
    #: Audio decoded per file at most; longer files are read as windows spread over the whole file.
    max_audio_decode_seconds: float = 60.0


def _default_threads() -> int:
    return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class IngestConfig:
    """How an ingest run works."""

    limits: LimitsConfig = field(default_factory=LimitsConfig)
    #: Items decoded and encoded together; each modality runs one forward pass per chunk.
    chunk_size: int = 32
    #: Rows written per LanceDB commit.
    write_batch: int = 512
    #: Threads that decode and preprocess media while the models run.
    decode_workers: int = 2
    #: Threads for model inference (torch and onnxruntime).
    threads: int = field(default_factory=_default_threads)
    #: Old table versions kept after the post-ingest optimise (for rollback).
    keep_versions: timedelta = timedelta(hours=1)
    #: ``"local"`` (this process) or ``"ray"``: decode and encode on Ray Data actors, one commit (mmrec.ingest.distributed).
    engine: str = "local"
    #: Ray cluster to join (``ray://host:10001``, ``auto``); ``None`` starts a local Ray and shuts it down after.
    ray_address: str | None = None
    #: Ray actors, each loading the encoders once (``None``: one per CPU of a local Ray, or per GPU).
    ray_workers: int | None = None
    #: CPUs and GPUs reserved by each actor; GPUs ``None``: one each when the cluster has GPUs, else none
    #: (0 keeps the encoders on CPU; see mmrec.ingest.distributed.plan_resources).
    ray_cpus_per_worker: float = 1.0
    ray_gpus_per_worker: float | None = None
    #: Items per Ray batch, and so per Lance fragment written by a worker.
    ray_batch: int = 256


@dataclass(frozen=True)
class ProfileConfig:
    """How profiles aggregate interactions."""

    #: Days after which an interaction counts half.
    half_life_days: float = 30.0
    max_interests: int = 4
    #: An item at least this similar (cosine) to an interest joins it; otherwise it may open a new one.
    join_similarity: float = 0.55
    #: How much the negative vector pushes similar items down (0 disables).
    negative_penalty: float = 0.6
