"""Pack named float32 vectors into one blob: [u16 name length][name][u32 dims][dims x f32]..."""

from __future__ import annotations

import struct

import numpy as np


def encode_vectors(vectors: dict[str, list[float]]) -> bytes | None:
    if not vectors:
        return None
    parts: list[bytes] = []
    for name, values in vectors.items():
        raw_name = name.encode()
        arr = np.asarray(values, dtype="<f4")
        parts.append(struct.pack("<HI", len(raw_name), arr.shape[0]) + raw_name + arr.tobytes())
    return b"".join(parts)


def decode_vectors(blob: bytes | None) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    if not blob:
        return out
    pos = 0
    while pos < len(blob):
        name_len, dims = struct.unpack_from("<HI", blob, pos)
        pos += 6
        name = blob[pos : pos + name_len].decode()
        pos += name_len
        out[name] = np.frombuffer(blob, dtype="<f4", count=dims, offset=pos).tolist()
        pos += 4 * dims
    return out
