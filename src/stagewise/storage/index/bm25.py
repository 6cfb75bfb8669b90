"""BM25 for the Qdrant server transport, scored exactly as the embedded text index scores.

The embedded shards rank `_text` with a scored text index (`layout.bm25_text_index()`: word
tokenizer, lowercase, English stop words, Snowball English stemmer) and a TextQuery.
Measured against qdrant-edge 0.9 (300 Cranfield documents, 30 queries, after deletes and
overwrites too), that index scores

    score(d, q) = sum over t in set(terms(q)) of
                  idf(t) * tf(t, d) * (k1 + 1) / (tf(t, d) + k1 * (1 - b + b * |d| / avgdl))
    idf(t)      = ln(1 + (N - df(t) + 0.5) / (df(t) + 0.5)),   k1 = 1.2, b = 0.75

where terms(x) are the word tokens of x, lowercased, English stop words dropped (before
stemming: "cans" stems to the stop word "can" and still counts), then Snowball-stemmed;
|d| is the number of terms of d; N is the number of live points with at least one term,
df(t) those holding t, and avgdl the mean |d| over the N. The statistics are live: a delete
or an overwrite changes them at once. Scores are f32 (this formula in f64 differs from the
engine by at most 2.3e-6).

Sparse vectors with the IDF modifier cannot reproduce that: a document's weights need
avgdl when it is written, and avgdl moves with every write. Loading the same 300 documents
in batches of 50, each weighted with the avgdl known so far, the scores differed by up to
0.62 (6%) and the top-10 sets of 6 of 30 queries differed. So a point stores its terms, as
text, in `_bm25`, under a text index with the default word tokenizer and BM25 scoring, and
a TextQuery over it with the query's terms: the server computes the same live statistics
as the embedded index, and so does qdrant-client's local mode (measured: at most 1.9e-6
from qdrant-edge, the same ranking for every query).

Where the two can still differ: the server re-tokenizes `_bm25`. A term that Python
lower-cases into characters the word tokenizer splits on (e.g. "İ" becomes "i" plus a
combining dot) counts as two terms there; local mode's tokenizer (`[^\\W_]+`) also splits
on the combining marks Rust counts as alphanumeric (Indic vowel signs). Latin, Greek and
Cyrillic text is unaffected.
"""

from __future__ import annotations

from typing import Final

# The filter evaluator mirrors the same word tokenizer and stemmer (no stop words there).
from stagewise.domain.filters import _WORD_RE, _stem

BM25_FIELD: Final = "_bm25"  # payload field holding a point's terms, space-separated

# Qdrant's English stop words (NLTK's list). Its entries with an apostrophe ("don't") are
# left out: the word tokenizer never yields one.
_STOPWORDS = """
    i me my myself we our ours ourselves you your yours yourself yourselves he him his himself
    she her hers herself it its itself they them their theirs themselves what which who whom
    this that these those am is are was were be been being have has had having do does did
    doing a an the and but if or because as until while of at by for with about against
    between into through during before after above below to from up down in out on off over
    under again further then once here there when where why how all any both each few more
    most other some such no nor not only own same so than too very s t can will just don
    should now d ll m o re ve y ain aren couldn didn doesn hadn hasn haven isn ma mightn
    mustn needn shan shouldn wasn weren won wouldn
"""
ENGLISH_STOPWORDS: Final = frozenset(_STOPWORDS.split())


def bm25_terms(text: str) -> list[str]:
    """The terms the embedded BM25 index sees in `text`, in order (see the module doc)."""
    lowered = (token.lower() for token in _WORD_RE.findall(text))
    return [_stem(word) for word in lowered if word not in ENGLISH_STOPWORDS]


def bm25_text(text: str) -> str:
    """`text` as stored in (and queried against) the `_bm25` field."""
    return " ".join(bm25_terms(text))
