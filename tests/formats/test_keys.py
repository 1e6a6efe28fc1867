import numpy as np
import pytest

from hugectr2onnx.hugectr.keys import offset_keys, slot_offsets


def test_offsets_are_running_sums_and_zero_past_the_array():
    # FORMATS §6.4: column c gets sum(sizes[:c]); a size 0 shares the next column's offset;
    # columns past the array get 0, not the running sum
    np.testing.assert_array_equal(slot_offsets([10, 0, 5], 5), [0, 10, 10, 0, 0])
    np.testing.assert_array_equal(slot_offsets([], 2), [0, 0])
    np.testing.assert_array_equal(slot_offsets([3, 4, 5, 6], 2), [0, 3])


def test_offset_keys_adds_each_columns_offset_to_every_key_but_padding():
    keys = np.array([[[1, 2], [0, -1], [7, -1]]])  # 1 row, 3 columns, 2 keys each
    np.testing.assert_array_equal(offset_keys(keys, [100, 20, 3]),
                                  [[[1, 2], [100, -1], [127, -1]]])
    np.testing.assert_array_equal(offset_keys(keys, [100, 20, 3], padding_key=None),
                                  [[[1, 2], [100, 99], [127, 119]]])
    np.testing.assert_array_equal(offset_keys(np.array([[1, 1, 1]]), [4, 6, 8]), [[1, 5, 11]])


def test_negative_sizes_are_refused():
    with pytest.raises(ValueError):
        slot_offsets([3, -1], 2)
