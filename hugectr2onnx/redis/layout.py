"""HPS's Redis layout (HugeCTR <= 24.x, ``src/hps/redis_backend.cpp``), see docs/redis.md.

One Redis hash per table partition, named ``hps_et{hps_et.<model>.<table>/p<N>}v``; field =
the key's raw little-endian bytes (8 for ``long long`` keys, 4 for ``unsigned int``), value =
the raw float32 vector. A key's partition is ``rrxmrrxmsx_0(key) % num_partitions``.
"""

from __future__ import annotations

import re

import numpy as np

from ..errors import UsageError

TAG_PREFIX = "hps_et"  # HierParameterServerBase::PS_EMBEDDING_TABLE_TAG_PREFIX
DEFAULT_PARTITIONS = 16  # VolatileBackendParams::num_partitions
NAME_SYNTAX = re.compile(r"[a-zA-Z0-9_\-]{1,120}")  # make_tag_name's check
KEY_DTYPES = {8: np.dtype("<i8"), 4: np.dtype("<u4")}  # supportlonglong true / false

_M1 = np.uint64(0xA24BAED4963EE407)
_M2 = np.uint64(0x9FB21C651E98DF25)


def _rotr(x: np.ndarray, n: int) -> np.ndarray:
    return (x >> np.uint64(n)) | (x << np.uint64(64 - n))


def rrxmrrxmsx_0(keys: np.ndarray) -> np.ndarray:
    """Pelle Evensen's mixer as HPS applies it (database_backend_detail.hpp), on uint64 arrays.

    Signed keys are reinterpreted (two's complement), unsigned 32-bit keys zero-extended, as the
    C++ conversion to ``uint64_t`` does."""
    x = np.asarray(keys)
    x = x.view(np.uint64) if x.dtype == np.int64 else x.astype(np.uint64)
    with np.errstate(over="ignore"):
        x = x ^ _rotr(x, 25) ^ _rotr(x, 50)
        x = x * _M1
        x = x ^ _rotr(x, 24) ^ _rotr(x, 49)
        x = x * _M2
        return x ^ (x >> np.uint64(28))


def partition_of(keys: np.ndarray, num_partitions: int) -> np.ndarray:
    """HCTR_HPS_KEY_TO_PART_INDEX_: the partition of each key (int64 array)."""
    return (rrxmrrxmsx_0(keys) % np.uint64(num_partitions)).astype(np.int64)


def check_name(value: str, what: str) -> str:
    if not NAME_SYNTAX.fullmatch(value):
        raise UsageError(f"{what} {value!r} is not a valid HPS name ([a-zA-Z0-9_-], 1-120 "
                         f"characters, as HierParameterServerBase::make_tag_name requires)")
    return value


def tag_name(model: str, table: str) -> str:
    """HierParameterServerBase::make_tag_name: ``hps_et.<model>.<table>``."""
    return f"{TAG_PREFIX}.{check_name(model, 'model name')}.{check_name(table, 'table name')}"


def partition_key(tag: str, partition: int, suffix: str = "v") -> bytes:
    """make_hkey: ``hps_et{<tag>/p<N>}<suffix>``; 'v' holds vectors, 't' HPS's eviction metadata."""
    return f"{TAG_PREFIX}{{{tag}/p{partition}}}{suffix}".encode()


def key_fields(keys: np.ndarray, key_bytes: int = 8) -> np.ndarray:
    """Keys as the fixed-width little-endian byte strings HPS uses as hash fields ([n, key_bytes]
    uint8)."""
    dtype = KEY_DTYPES.get(key_bytes)
    if dtype is None:
        raise UsageError(f"key width must be 4 or 8 bytes, found {key_bytes}")
    k = np.asarray(keys)
    if key_bytes == 4 and k.size and (k.min() < 0 or k.max() > 0xFFFFFFFF):
        raise UsageError("keys outside [0, 2^32) cannot be stored as 4-byte HPS keys")
    return np.ascontiguousarray(k.astype(dtype)).view(np.uint8).reshape(-1, key_bytes)


def partition_order(part: np.ndarray, num_partitions: int) -> np.ndarray:
    """A stable order grouping keys by partition: numpy radix-sorts 8/16-bit integers, an
    O(n) pass instead of a comparison sort."""
    small = np.uint8 if num_partitions <= 256 else np.uint16 if num_partitions <= 65536 else None
    return np.argsort(part.astype(small) if small else part, kind="stable")
