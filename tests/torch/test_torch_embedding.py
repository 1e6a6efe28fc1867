"""HugeCTREmbedding against hand-computed answers: any int64 key, unseen keys give zeros,
mean over non-padding keys, Localized GPU groups, new keys in training, sparse gradients."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from hugectr2onnx.torch import embedding as emb_mod  # noqa: E402
from hugectr2onnx.torch.embedding import HugeCTREmbedding  # noqa: E402

BIG = 2 ** 62 + 3
KEYS = np.array([10, -5, BIG], np.int64)
VECS = np.array([[1, 2], [3, 4], [5, 6]], np.float32)


def table(combiner="sum", **kw):
    kw.setdefault("capacity", 3)
    return HugeCTREmbedding(2, 2, combiner=combiner, keys=KEYS, vectors=VECS, **kw).eval()


def lookup(e, keys):
    with torch.no_grad():
        return e(torch.as_tensor(np.asarray(keys), dtype=torch.int64)).numpy()


def test_sum_of_found_rows_unseen_and_padding_give_zero():
    got = lookup(table(), [[[10, -5, -1], [7, -1, -1]], [[BIG, BIG, 10], [-1, -1, -1]]])
    np.testing.assert_array_equal(got, [[[4, 6], [0, 0]], [[11, 14], [0, 0]]])


def test_mean_divides_by_non_padding_keys_unseen_included():
    got = lookup(table("mean"), [[[10, -5, -1], [10, 7, -1]], [[7, -1, -1], [-1, -1, -1]]])
    np.testing.assert_allclose(got, [[[2, 3], [0.5, 1]], [[0, 0], [0, 0]]])


def test_no_padding_key_counts_every_entry():
    got = lookup(table("mean", padding_key=None), [[[10, -1], [-5, -5]]])
    np.testing.assert_allclose(got, [[[0.5, 1], [3, 4]]])


def test_new_keys_get_fresh_rows_in_training_only_up_to_capacity():
    e = table(capacity=5)
    query = torch.tensor([[[7, 8], [9, 10]]])
    assert not lookup(e, query).any(axis=-1)[0, 0]  # eval: unseen keys stay zero
    assert int(e.num_keys) == 3
    e.train()
    first = e(query).detach().numpy()
    assert int(e.num_keys) == 5  # 7 and 8 took the two free rows; 9 found no room
    rows = e.weight.detach().numpy()[3:5]
    assert (np.abs(rows) <= emb_mod.NEW_ROW_BOUND).all() and np.abs(rows).max() > 0
    np.testing.assert_allclose(first[0, 0], rows.sum(axis=0), rtol=1e-6)
    np.testing.assert_allclose(first[0, 1], VECS[0])  # 9 unseen (no room) + 10
    t = e.table()
    np.testing.assert_array_equal(t["keys"], [10, -5, BIG, 7, 8])
    np.testing.assert_array_equal(t["vectors"][3:], rows)
    e.eval()
    np.testing.assert_allclose(lookup(e, query), first)


def test_new_keys_are_taken_in_order_of_first_appearance():
    e = table(capacity=4).train()
    e(torch.tensor([[[99, 42], [42, 5]]]))
    assert e.table()["keys"].tolist() == [10, -5, BIG, 99]


def test_localized_groups_tell_repeated_keys_apart_and_new_keys_take_their_slot():
    # key 5 on GPU 0 (slot_id 0) and on GPU 1 (slot_id 1); slots alternate between GPUs
    e = HugeCTREmbedding(1, 4, keys=np.array([5, 5, 6]), vectors=np.array([[1], [2], [3]]),
                         slot_ids=np.array([0, 1, 2], np.uint64), localized=True, num_gpus=2,
                         capacity=5).eval()
    got = lookup(e, [[[5], [5], [6], [6]]])
    np.testing.assert_array_equal(got[0, :, 0], [1, 2, 3, 0])  # 6 lives on GPU 0 only
    e.train()
    e(torch.tensor([[[-1], [-1], [-1], [6]]]))  # 6 is new for GPU 1, seen in slot 3
    t = e.table()
    assert t["keys"].tolist() == [5, 5, 6, 6] and t["slot_ids"].tolist() == [0, 1, 2, 3]
    assert t["slot_ids"].dtype == np.uint64


def test_sparse_gradients_touch_only_the_batch_rows():
    e = table(sparse=True).train()
    opt = torch.optim.SGD(e.parameters(), lr=0.5)
    e(torch.tensor([[[10, -1], [-1, -1]]])).sum().backward()
    assert e.weight.grad.is_sparse
    opt.step()
    w = e.weight.detach().numpy()
    np.testing.assert_allclose(w[0], VECS[0] - 0.5)
    np.testing.assert_array_equal(w[1:3], VECS[1:])
    e.eval()  # the row standing for absent keys is zero again at the next lookup
    np.testing.assert_array_equal(lookup(e, [[[7, -1], [-1, -1]]]), 0)


def test_two_forwards_then_one_backward():
    e = table().train()
    opt = torch.optim.SGD(e.parameters(), lr=0.5)
    e(torch.tensor([[[10, -1], [-1, -1]]])).sum().backward()
    opt.step()  # moves the absent-key row
    a = e(torch.tensor([[[10, -1], [7, -1]]])).sum()
    b = e(torch.tensor([[[-5, -1], [-1, -1]]])).sum()
    (a + b).backward()  # no in-place error: the row was reset once, before both
    assert lookup(e.eval(), [[[8, -1], [-1, -1]]]).sum() == 0


def test_index_merges_and_state_dict_round_trip(monkeypatch):
    monkeypatch.setattr(emb_mod, "MIN_DELTA", 4)  # force several merges of the delta
    rng = np.random.default_rng(0)
    e = HugeCTREmbedding(3, 1, capacity=400).train()
    keys = rng.integers(-(2 ** 63), 2 ** 63 - 1, 300, dtype=np.int64)
    for chunk in np.array_split(keys, 30):
        e(torch.tensor(chunk).reshape(-1, 1, 1))
    t = e.table()
    assert sorted(t["keys"].tolist()) == sorted(set(keys.tolist()))
    e.eval()
    got = lookup(e, keys.reshape(-1, 1, 1))[:, 0]
    row_of = {int(k): i for i, k in enumerate(t["keys"])}
    np.testing.assert_array_equal(got, t["vectors"][[row_of[int(k)] for k in keys]])
    fresh = HugeCTREmbedding(3, 1, capacity=400).eval()
    fresh.load_state_dict(e.state_dict())
    np.testing.assert_array_equal(lookup(fresh, keys.reshape(-1, 1, 1)), got[:, None])


def test_adagrad_on_sparse_gradients_updates_only_the_batch_rows():
    e = table(sparse=True).train()
    opt = torch.optim.Adagrad(e.parameters(), lr=0.1)
    e(torch.tensor([[[-5, BIG], [-1, -1]]])).sum().backward()
    opt.step()
    w = e.weight.detach().numpy()
    np.testing.assert_array_equal(w[0], VECS[0])
    np.testing.assert_allclose(w[1:3], VECS[1:] - 0.1, rtol=1e-6)  # Adagrad's first step: lr


@pytest.mark.parametrize("low", [0, -500, 2 ** 63 - 1000])
def test_packed_keys_use_a_direct_row_array(low):
    """Keys packed in a short range (a static collection table's row indices) are looked up
    in a direct key -> row array; every query, also ones whose offset wraps around int64,
    gives the row a plain dictionary gives."""
    from hugectr2onnx.torch.embedding import _Index

    rng = np.random.default_rng(0)
    keys = np.arange(low, low + 1000, dtype=np.int64)[rng.permutation(1000)][:900]
    index = _Index(torch.from_numpy(keys), torch.arange(900))
    assert index.direct is not None
    edges = [min(max(v, -2 ** 63), 2 ** 63 - 1)
             for v in (low - 1, low + 1000, -2 ** 63, -2 ** 63 + 5, 2 ** 63 - 1)]
    q = np.concatenate([keys[:50], np.array(edges, np.int64),
                        rng.integers(low - 200, min(low + 1200, 2 ** 63 - 1), 200)])
    row_of = {int(k): r for r, k in enumerate(keys)}
    want = [row_of.get(int(k), -1) for k in q]
    assert index.find(torch.from_numpy(q)).tolist() == want
    index.add(torch.tensor([low - 7]), torch.tensor([900]))  # a new key: the delta
    assert index.find(torch.tensor([low - 7, int(keys[3])])).tolist() == [900, 3]
