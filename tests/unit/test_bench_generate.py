"""bench/generate.py: deterministic, the requested shapes and ranges, real cluster structure."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from bench.generate import (
    BLOCK,
    DIM,
    N_CATEGORIES,
    N_TAGS,
    VOCAB_SIZE,
    Dataset,
    Spec,
    category_weights,
    nearest_centroid,
    selective_category,
    vocabulary,
)

pytestmark = [pytest.mark.unit]

N = 3000


@pytest.fixture(scope="module")
def ds() -> Dataset:
    return Dataset(Spec(N, seed=11))


def test_same_seed_same_data(ds: Dataset) -> None:
    again = Dataset(Spec(N, seed=11))
    assert np.array_equal(ds.vectors(), again.vectors())
    assert np.array_equal(ds.labels(), again.labels())
    assert list(ds.docs()) == list(again.docs())
    qa, ta, ca = ds.queries(20)
    qb, tb, cb = again.queries(20)
    assert np.array_equal(qa, qb) and ta == tb and np.array_equal(ca, cb)


def test_different_seed_different_data(ds: Dataset) -> None:
    other = Dataset(Spec(N, seed=12))
    assert not np.array_equal(ds.vectors()[:10], other.vectors()[:10])
    assert [d["text"] for d in ds.docs(0, 10)] != [d["text"] for d in other.docs(0, 10)]


def test_a_document_does_not_depend_on_n() -> None:
    small, large = Dataset(Spec(BLOCK + 500, seed=3)), Dataset(Spec(2 * BLOCK + 7, seed=3))
    assert np.array_equal(small.vectors(), large.vectors()[: BLOCK + 500])
    assert list(small.docs(BLOCK - 5, BLOCK + 5)) == list(large.docs(BLOCK - 5, BLOCK + 5))


def test_vector_shapes_and_norms(ds: Dataset) -> None:
    v = ds.vectors()
    assert v.shape == (N, DIM) and v.dtype == np.float32
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    blocks = list(ds.vector_blocks())
    assert sum(len(b) for _, b in blocks) == N
    assert all(b.dtype == np.float32 and b.shape[1] == DIM for _, b in blocks)


def test_cache_file_roundtrip(ds: Dataset, tmp_path: Path) -> None:
    cached = ds.vectors(tmp_path)
    assert isinstance(cached, np.memmap)
    assert np.array_equal(np.asarray(cached), ds.vectors())
    files = list(tmp_path.glob("*.npy"))
    assert len(files) == 1 and f"n{N}-" in files[0].name and "-s11-" in files[0].name
    # Reused, not rewritten.
    mtime = files[0].stat().st_mtime_ns
    assert np.array_equal(np.asarray(ds.vectors(tmp_path)), np.asarray(cached))
    assert files[0].stat().st_mtime_ns == mtime


def test_cluster_structure(ds: Dataset) -> None:
    v, labels = ds.vectors(), ds.labels()
    assert labels.min() >= 0 and labels.max() < ds.spec.n_clusters
    agree = float(np.mean(nearest_centroid(v, ds.centres) == labels))
    assert agree >= 0.95
    # Same-cluster pairs are far more similar than pairs across clusters.
    sims = v[:500] @ v[:500].T
    same = labels[:500, None] == labels[None, :500]
    np.fill_diagonal(same, False)
    off = ~same
    np.fill_diagonal(off, False)
    assert sims[same].mean() > 0.5 > 0.1 > abs(sims[off].mean())
    # Varied spreads and cluster sizes.
    assert ds.spreads.max() / ds.spreads.min() > 2
    assert ds.cluster_weights.max() / ds.cluster_weights.min() > 4


def test_queries_sit_near_their_cluster_centre(ds: Dataset) -> None:
    q, texts, clusters = ds.queries(50)
    assert q.shape == (50, DIM) and q.dtype == np.float32
    assert np.array_equal(nearest_centroid(q, ds.centres), clusters)
    assert all(2 <= len(t.split()) <= 3 for t in texts)
    vocab = set(ds.vocab)
    assert all(w in vocab for t in texts for w in t.split())


def test_texts_and_metadata(ds: Dataset) -> None:
    docs = list(ds.docs())
    assert len(docs) == N
    assert [d["document_id"] for d in docs[:2]] == ["d0000000", "d0000001"]
    vocab = set(ds.vocab)
    words = Counter()
    for d in docs:
        tokens = d["text"].split()
        assert 8 <= len(tokens) <= 20
        assert all(t in vocab for t in tokens)
        words.update(tokens)
        m = d["metadata"]
        assert m["category"] in {f"cat{i:02d}" for i in range(N_CATEGORIES)}
        assert 1990 <= m["year"] <= 2024 and isinstance(m["year"], int)
        assert isinstance(m["price"], float) and m["price"] > 0
        assert 1 <= len(m["tags"]) <= 3 and len(set(m["tags"])) == len(m["tags"])
        assert all(t in {f"tag{i:02d}" for i in range(N_TAGS)} for t in m["tags"])
    # Zipf-like: the most frequent words dominate, and a wide vocabulary is in use.
    counts = [c for _, c in words.most_common()]
    assert counts[0] > 20 * counts[min(len(counts) - 1, 500)]
    assert len(words) > 1000
    # Category skew, and the ~10% category the filter benchmarks use.
    cats = Counter(d["metadata"]["category"] for d in docs)
    name, share = selective_category()
    assert 0.07 < share < 0.12
    assert abs(cats[name] / N - share) < 0.03
    assert cats["cat00"] > cats["cat19"] * 5
    years = {d["metadata"]["year"] for d in docs}
    assert min(years) == 1990 and max(years) == 2024


def test_vocabulary() -> None:
    words = vocabulary(0)
    assert len(words) == len(set(words)) == VOCAB_SIZE
    assert vocabulary(0) == words and vocabulary(1) != words
    assert abs(category_weights().sum() - 1) < 1e-12


def test_columns_match_docs(ds: Dataset) -> None:
    years = ds.column("year")
    assert years.shape == (N,)
    assert years[:50].tolist() == [d["metadata"]["year"] for d in ds.docs(0, 50)]
