"""SASRec (Kang & McAuley 2018) with full-softmax cross-entropy: the ID-only baseline the hybrid must beat.

The same sequence tower, trainer and data path as :class:`~mmrec.recsys.hybrid.HybridRecommender`,
with ``item_tower="id"``: items are learned ID embeddings only, no content. Trained with the
full softmax over the catalog (SASRec+ of Klenitskiy & Vasilev, RecSys'23; anchor on ML-100k
leave-last-out NDCG@10 0.103 in ../shared/notes/anchors.md). Sharing the code means the
comparison isolates what the content tower adds, nothing else.
"""

from __future__ import annotations

from dataclasses import replace

from mmrec.recsys.hybrid import HybridConfig, HybridRecommender


class SASRec(HybridRecommender):
    """ID-only SASRec; ``config``'s ``item_tower`` is forced to ``"id"``.

    Parameters
    ----------
    config : HybridConfig, optional
        Sequence length, blocks, dropout, epochs… (default: the hybrid's defaults).
    """

    name = "SASRec"

    def __init__(self, config: HybridConfig | None = None) -> None:
        super().__init__(replace(config or HybridConfig(), item_tower="id"))
