"""HPS's Redis layout against values worked out by hand from the C++ definitions."""

import numpy as np
import pytest

from hugectr2onnx.errors import UsageError
from hugectr2onnx.redis.layout import (key_fields, partition_key, partition_of, rrxmrrxmsx_0,
                                       tag_name)
from hugectr2onnx.redis.resp import encode_command
from redis_models import mixer_by_hand

KEYS = [0, 1, 2, 7, 12345, 2 ** 31 - 1, 2 ** 32 - 1, 2 ** 40 + 3, 2 ** 63 - 1, -1, -2, -(2 ** 63),
        -987654321]


def test_mixer_matches_definition():
    got = rrxmrrxmsx_0(np.array(KEYS, dtype=np.int64))
    assert got.dtype == np.uint64
    assert [int(v) for v in got] == [mixer_by_hand(k) for k in KEYS]
    assert mixer_by_hand(0) == 0  # the mixer fixes zero: HPS puts key 0 in partition 0


def test_unsigned_32_bit_keys_zero_extend():
    keys = [0, 1, 2 ** 31, 2 ** 32 - 1]
    got = rrxmrrxmsx_0(np.array(keys, dtype=np.uint32))
    assert [int(v) for v in got] == [mixer_by_hand(k) for k in keys]


@pytest.mark.parametrize("parts", [1, 3, 16, 17, 1000])
def test_partition_is_mixer_modulo(parts):
    got = partition_of(np.array(KEYS, dtype=np.int64), parts)
    assert [int(p) for p in got] == [mixer_by_hand(k) % parts for k in KEYS]


def test_partition_spread_is_even():
    keys = np.arange(160_000, dtype=np.int64)
    counts = np.bincount(partition_of(keys, 16), minlength=16)
    assert counts.min() > 9_000 and counts.max() < 11_000


def test_names_follow_make_tag_name_and_make_hkey():
    tag = tag_name("wdl", "sparse_embedding1")
    assert tag == "hps_et.wdl.sparse_embedding1"
    assert partition_key(tag, 0) == b"hps_et{hps_et.wdl.sparse_embedding1/p0}v"
    assert partition_key(tag, 15, "t") == b"hps_et{hps_et.wdl.sparse_embedding1/p15}t"
    with pytest.raises(UsageError, match="not a valid HPS name"):
        tag_name("my model", "t")
    with pytest.raises(UsageError, match="not a valid HPS name"):
        tag_name("m", "a.b")


def test_fields_are_little_endian_key_bytes():
    f = key_fields(np.array([1, -1, 0x0102030405060708], dtype=np.int64))
    assert bytes(f[0]) == b"\x01" + b"\x00" * 7
    assert bytes(f[1]) == b"\xff" * 8
    assert bytes(f[2]) == bytes([8, 7, 6, 5, 4, 3, 2, 1])
    f4 = key_fields(np.array([1, 2 ** 32 - 1]), key_bytes=4)
    assert bytes(f4[0]) == b"\x01\x00\x00\x00" and bytes(f4[1]) == b"\xff" * 4
    with pytest.raises(UsageError, match="4-byte"):
        key_fields(np.array([-1]), key_bytes=4)


def test_resp_encoding_by_hand():
    fields = np.frombuffer(b"\x01\x00ab", np.uint8).reshape(2, 2)
    values = np.frombuffer(b"xyz", np.uint8).reshape(1, 3).repeat(2, axis=0)
    got = encode_command(b"HSET", b"h{t}", fields, values)
    assert got == (b"*6\r\n$4\r\nHSET\r\n$4\r\nh{t}\r\n"
                   b"$2\r\n\x01\x00\r\n$3\r\nxyz\r\n$2\r\nab\r\n$3\r\nxyz\r\n")
