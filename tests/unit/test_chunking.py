"""The chunking policy of bucket-sourced collections (services/chunking.py)."""

from __future__ import annotations

import pytest

from stagewise.errors import ValidationFailed
from stagewise.services.chunking import (
    DEFAULT_OVERLAP,
    DEFAULT_WORDS,
    ChunkPolicy,
    policy_from_parameters,
    split_text,
)

WORDS = " ".join(f"w{i}" for i in range(1000))


def test_unset_split_by_is_the_stated_default() -> None:
    policy = policy_from_parameters({"extractor_type": "text_extractor", "chunk_size": 1000})
    assert policy == ChunkPolicy("words", DEFAULT_WORDS, DEFAULT_OVERLAP)
    chunks = split_text(WORDS, policy)
    step = DEFAULT_WORDS - DEFAULT_OVERLAP
    assert [c.split()[0] for c in chunks] == [
        f"w{i}" for i in range(0, 1000 - DEFAULT_OVERLAP, step)
    ]
    assert all(len(c.split()) <= DEFAULT_WORDS for c in chunks)
    # Every word is covered, and consecutive chunks share exactly the overlap.
    assert set(" ".join(chunks).split()) == set(WORDS.split())
    assert chunks[0].split()[-DEFAULT_OVERLAP:] == chunks[1].split()[:DEFAULT_OVERLAP]


@pytest.mark.parametrize(
    ("split_by", "size", "overlap", "text", "want"),
    [
        ("characters", 4, 1, "abcdefghij", ["abcd", "defg", "ghij"]),
        ("words", 2, 0, "a b c d e", ["a b", "c d", "e"]),
        ("sentences", 2, 1, "One. Two! Three? Four.", ["One. Two!", "Two! Three?", "Three? Four."]),
        ("paragraphs", 1, 0, "p1 line\n\np2\n \np3", ["p1 line", "p2", "p3"]),
        ("pages", 2, 0, "a\fb\fc", ["a\fb", "c"]),
        ("none", 1000, 0, "  whole text  ", ["whole text"]),
    ],
)
def test_each_strategy_counts_in_its_own_unit(
    split_by: str, size: int, overlap: int, text: str, want: list[str]
) -> None:
    policy = policy_from_parameters(
        {"split_by": split_by, "chunk_size": size, "chunk_overlap": overlap}
    )
    assert split_text(text, policy) == want


def test_markdown_sections_and_code_blocks() -> None:
    text = "# Intro\nhello world\n```py\nx = 1\n# not a heading\n```\n## Next\nmore text here"
    chunks = split_text(text, ChunkPolicy("markdown", 1000, 0))
    assert chunks == [
        "# Intro hello world",
        "```py\nx = 1\n# not a heading\n```",
        "## Next more text here",
    ]


def test_empty_text_gives_no_chunk() -> None:
    assert split_text(" \n\t ", ChunkPolicy("words", 10, 0)) == []


@pytest.mark.parametrize(
    "params",
    [
        {"split_by": "time_segments"},
        {"split_by": "bogus"},
        {"split_by": "words", "chunk_size": 10, "chunk_overlap": 10},
        {"split_by": "words", "chunk_size": 0},
        {"split_by": "words", "chunk_size": 10_001},
    ],
)
def test_refused_policies(params: dict[str, object]) -> None:
    with pytest.raises(ValidationFailed):
        policy_from_parameters(params)
