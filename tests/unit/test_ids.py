"""Ids: point ids are uuid5 of the document id; new ids keep their alphabet and length."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stagewise.ids import _POINT_NAMESPACE, new_id, point_id

pytestmark = [pytest.mark.unit]


@given(st.text(min_size=1, max_size=200))
def test_point_id_is_uuid5_of_the_document_id(document_id: str) -> None:
    try:
        expected = str(uuid.uuid5(_POINT_NAMESPACE, document_id))
    except UnicodeEncodeError:  # lone surrogates: neither can encode them
        with pytest.raises(UnicodeEncodeError):
            point_id(document_id)
        return
    assert point_id(document_id) == expected


def test_new_ids_are_prefixed_base36_of_fixed_length_and_vary() -> None:
    ids = {new_id("exec_", 16) for _ in range(2000)}
    assert len(ids) == 2000
    for x in ids:
        assert x.startswith("exec_") and len(x) == 21
        assert set(x[5:]) <= set("abcdefghijklmnopqrstuvwxyz0123456789")
    # Every character is used at every position over many draws (no stuck digit).
    for pos in (5, 12, 20):
        assert len({x[pos] for x in ids}) == 36
