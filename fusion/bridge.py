"""Zero-shot bridge from class scores into the text encoder's space (ConSE).

Norouzi et al., "Zero-Shot Learning by Convex Combination of Semantic
Embeddings" (ICLR 2014): an image classified as 60 % "tabby" and 30 % "tiger
cat" is placed at the normalised 0.6/0.3-weighted mean of the text embeddings of
those class names. With ImageNet classes for images and AudioSet classes for
sounds, every modality lands in the text encoder's space without training.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from encoders.base import Encoder, l2_normalise

#: Prompt per modality: the text encoder reads sentences better than bare labels.
PROMPTS = {"image": "a picture of {}.", "audio": "the sound of {}."}
#: Classes mixed per item: the long tail of small probabilities only adds noise.
DEFAULT_TOP_K = 10


@dataclass(frozen=True)
class ClassBridge:
    """Maps class-score vectors to the weighted mean of class-name embeddings.

    Attributes
    ----------
    class_embeddings : np.ndarray
        Shape ``(C, D)``: L2-normalised text embeddings of the ``C`` class prompts.
    top_k : int
        Classes mixed per row.
    key : str
        Identifies the text encoder, class names and prompt that made the embeddings.
    """

    class_embeddings: np.ndarray
    top_k: int = DEFAULT_TOP_K
    key: str = ""

    @property
    def dim(self) -> int:
        return int(self.class_embeddings.shape[1])

    def __call__(self, scores: np.ndarray) -> np.ndarray:
        """Bridge class scores of shape ``(N, C)`` to vectors of shape ``(N, D)`` (L2-normalised)."""
        scores = np.asarray(scores, dtype=np.float32)
        if scores.ndim != 2 or scores.shape[1] != self.class_embeddings.shape[0]:
            raise ValueError(
                f"expected class scores of shape (N, {self.class_embeddings.shape[0]}), got {scores.shape}"
            )
        if len(scores) == 0:
            return np.zeros((0, self.dim), np.float32)
        k = min(self.top_k, scores.shape[1])
        top = np.argpartition(-scores, k - 1, axis=1)[:, :k]  # (N, k)
        weights = np.take_along_axis(scores, top, axis=1).clip(min=0)
        weights /= np.maximum(weights.sum(axis=1, keepdims=True), 1e-12)
        mixed = np.einsum("nk,nkd->nd", weights, self.class_embeddings[top])
        return l2_normalise(mixed)


def bridge_key(text_encoder: Encoder, class_names: Sequence[str], prompt: str) -> str:
    h = hashlib.sha256()
    h.update(text_encoder.identity.fingerprint.encode())
    h.update(prompt.encode())
    for name in class_names:
        h.update(name.encode() + b"\0")
    return h.hexdigest()[:16]


def build_class_bridge(
    text_encoder: Encoder, class_names: Sequence[str], prompt: str, top_k: int = DEFAULT_TOP_K
) -> ClassBridge:
    """Encode the class prompts with ``text_encoder``.

    Parameters
    ----------
    text_encoder : Encoder
        The encoder whose space is the shared space.
    class_names : sequence of str
        ``C`` class names, in the order of the class scores.
    prompt : str
        Format string with one ``{}`` for the class name.
    """
    texts = [prompt.format(name) for name in class_names]
    vectors = np.concatenate([text_encoder.encode(texts[i : i + 256]) for i in range(0, len(texts), 256)])
    return ClassBridge(vectors.astype(np.float32), top_k=top_k, key=bridge_key(text_encoder, class_names, prompt))
