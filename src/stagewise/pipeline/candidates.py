"""Turning index hits into pipeline candidates."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from stagewise.pipeline.stage import Candidate
from stagewise.storage.payload import SEQ_FIELD, TEXT_FIELD
from stagewise.storage.protocols import ScoredHit

_INTERNAL = frozenset({SEQ_FIELD, TEXT_FIELD, "document_id", "collection_id"})


def doc_from_payload(payload: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in payload.items() if k not in _INTERNAL}


def candidates_from_hits(
    collection_id: str, hits: Iterable[ScoredHit], *, scored: bool = True
) -> list[Candidate]:
    return [
        Candidate(
            document_id=h.document_id,
            collection_id=collection_id,
            score=h.score if scored else 0.0,
            doc=doc_from_payload(h.payload),
        )
        for h in hits
    ]
