"""How a bucket object's text becomes document chunks (docs/ingestion.md, "Chunking").

`split_by` and `chunk_size`/`chunk_overlap` are the text_extractor's parameters, counted in
the strategy's own unit (characters, words, sentences, paragraphs, pages). When `split_by` is
unset the server's stated default applies: words, `DEFAULT_WORDS` per chunk with
`DEFAULT_OVERLAP` words of overlap, because the local model reads only its first 256 word
pieces and a longer chunk would be embedded by its opening alone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from stagewise.errors import ValidationFailed

DEFAULT_WORDS = 200
DEFAULT_OVERLAP = 20
SUPPORTED = ("characters", "words", "sentences", "paragraphs", "pages", "markdown", "none")

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")
_HEADING = re.compile(r"^#{1,6}\s")


@dataclass(frozen=True)
class ChunkPolicy:
    split_by: str
    size: int
    overlap: int

    def describe(self) -> dict[str, Any]:
        return {"split_by": self.split_by, "chunk_size": self.size, "chunk_overlap": self.overlap}


def policy_from_parameters(parameters: dict[str, Any] | None) -> ChunkPolicy:
    """The policy a collection's extractor parameters ask for; 422 for what cannot run here."""
    params = parameters or {}
    split_by = params.get("split_by")
    if split_by is None:
        return ChunkPolicy("words", DEFAULT_WORDS, DEFAULT_OVERLAP)
    if split_by not in SUPPORTED:
        raise ValidationFailed(
            f"split_by '{split_by}' is not supported here (no audio or video pipeline); "
            f"use one of {list(SUPPORTED)}",
            code="unsupported_split_by",
            field="feature_extractor.parameters.split_by",
            supported=list(SUPPORTED),
        )
    size = params.get("chunk_size")
    size = 1000 if size is None else size
    overlap = params.get("chunk_overlap") or 0
    if not isinstance(size, int) or not isinstance(overlap, int):
        raise ValidationFailed(
            "chunk_size and chunk_overlap must be integers",
            code="invalid_chunking",
            field="feature_extractor.parameters",
        )
    if not 1 <= size <= 10_000 or not 0 <= overlap < max(size, 1):
        raise ValidationFailed(
            f"chunk_size must be 1..10000 and chunk_overlap 0..chunk_size-1 "
            f"(got {size} and {overlap})",
            code="invalid_chunking",
            field="feature_extractor.parameters",
        )
    return ChunkPolicy(str(split_by), size, overlap)


def _windows(units: list[str], size: int, overlap: int, joiner: str) -> list[str]:
    if not units:
        return []
    step = size - overlap
    out: list[str] = []
    for start in range(0, len(units), step):
        out.append(joiner.join(units[start : start + size]))
        if start + size >= len(units):
            break
    return out


def _markdown_sections(text: str, words_per_chunk: int) -> list[str]:
    """One chunk per heading section (long ones split by words) and per fenced code block."""
    sections: list[str] = []
    current: list[str] = []
    in_code = False
    for line in text.splitlines():
        fence = line.lstrip().startswith("```")
        if fence and not in_code:
            sections.append("\n".join(current))
            current, in_code = [line], True
            continue
        if fence and in_code:
            current.append(line)
            sections.append("\n".join(current))
            current, in_code = [], False
            continue
        if not in_code and _HEADING.match(line):
            sections.append("\n".join(current))
            current = []
        current.append(line)
    sections.append("\n".join(current))
    out: list[str] = []
    for section in (s.strip() for s in sections):
        if not section:
            continue
        if section.startswith("```"):
            out.append(section)
        else:
            out += _windows(section.split(), words_per_chunk, 0, " ")
    return out


def split_text(text: str, policy: ChunkPolicy) -> list[str]:
    """The chunks of `text`, in order, none empty. Empty text gives no chunk."""
    text = text.strip()
    if not text:
        return []
    kind, size, overlap = policy.split_by, policy.size, policy.overlap
    if kind == "none":
        return [text]
    if kind == "characters":
        chunks = _windows(list(text), size, overlap, "")
    elif kind == "words":
        chunks = _windows(text.split(), size, overlap, " ")
    elif kind == "sentences":
        chunks = _windows(_SENTENCE_END.split(text), size, overlap, " ")
    elif kind == "paragraphs":
        chunks = _windows(_PARAGRAPH_BREAK.split(text), size, overlap, "\n\n")
    elif kind == "pages":
        chunks = _windows(text.split("\f"), size, overlap, "\f")
    else:  # markdown
        chunks = _markdown_sections(text, size)
    return [c.strip() for c in chunks if c.strip()]
