"""Training-step throughput of a HugeCTR DLRM loaded with ``hugectr2onnx.torch`` against the
same DLRM written by hand in PyTorch (``nn.EmbeddingBag`` + ``nn.Linear``), on CPU.

Both models get the same weights (checked: equal predictions before timing) and the same
batches. The HugeCTRModule takes raw hashed 64-bit keys and maps them to rows itself
(searchsorted); the hand-written model takes row ids mapped beforehand, as a torch user
would feed it. One step = forward, HugeCTR's BCE loss, backward, optimizer step. Steps of
the two models alternate in rounds (A B B A ...) so load changes on a shared machine hit
both. Prints the median ms per step, samples/s, the ratio of the medians and the median of
the per-round ratios (target: >= 0.8x the hand-written model's throughput).

    python bench/torch_train_throughput.py                       # batch 4096, DLRM sizes
    python bench/torch_train_throughput.py --keys 200000 --rounds 5 --steps 4
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import hugectr2onnx.torch as ht  # noqa: E402
from hugectr2onnx import zoo  # noqa: E402


class HandDLRM(nn.Module):
    """DLRM as a torch user writes it: one EmbeddingBag over 26 slots, Linear stacks, the dot
    interaction below the diagonal plus HugeCTR's zero column."""

    def __init__(self, num_rows, vec, dense_dim, bottom, top, sparse):
        super().__init__()
        self.emb = nn.EmbeddingBag(num_rows, vec, mode="sum", sparse=sparse)
        dims = [dense_dim, *bottom]
        self.bottom = nn.Sequential(*[m for a, b in zip(dims, dims[1:])
                                      for m in (nn.Linear(a, b), nn.ReLU())])
        self.top_dims = top
        self.top = None
        self._vec, self._dense_dim = vec, dense_dim

    def build_top(self, slots):
        n = slots + 1
        dims = [self._vec + n * (n - 1) // 2 + 1, *self.top_dims]
        layers = [m for a, b in zip(dims, dims[1:]) for m in (nn.Linear(a, b), nn.ReLU())]
        self.top = nn.Sequential(*layers, nn.Linear(dims[-1], 1))
        row, col = torch.tril_indices(n, n, -1)  # row-major below the diagonal, as HugeCTR
        self.register_buffer("pairs", row * n + col, persistent=False)

    def forward(self, dense, rows):
        b, s = rows.shape[:2]
        x = self.bottom(dense)
        e = self.emb(rows.reshape(b * s, -1)).reshape(b, s, -1)
        t = torch.cat([x.unsqueeze(1), e], dim=1)
        gram = torch.bmm(t, t.transpose(1, 2)).reshape(b, -1)
        z = torch.cat([x, gram[:, self.pairs], x.new_zeros(b, 1)], dim=1)
        return self.top(z)


def copy_weights(module, hand, sizes):
    """The HugeCTR module's tensors into the hand-written model (W [in, out] -> weight.T)."""
    fcs = [m for m in list(hand.bottom) + list(hand.top) if isinstance(m, nn.Linear)]
    with torch.no_grad():
        for k, lin in enumerate(fcs, 1):
            p = module.layers[f"fc{k}"]
            lin.weight.copy_(p.W.T)
            lin.bias.copy_(p.b.reshape(-1))
        emb = next(iter(module.embeddings.values()))
        n = int(emb.num_keys)
        hand.emb.weight.copy_(emb.weight[:n])
    return emb.keys[:n].clone()


def build(args, tmp):
    builder = zoo.dlrm(slots=args.slots, bottom=tuple(args.bottom), top=tuple(args.top),
                       batchnorm=False)
    graph = builder.graph()
    rng = np.random.default_rng(0)
    keys = np.unique(rng.integers(-(2 ** 63), 2 ** 63 - 1, args.keys, dtype=np.int64))
    vec = args.bottom[-1]
    tables = [{"keys": keys, "vectors": rng.uniform(-0.05, 0.05, (keys.size, vec))
               .astype(np.float32)}]
    zoo.random_weights(graph, rng)
    art = zoo.save_model(builder, tmp, graph=graph, tables=tables)
    return art, keys


def batches(keys, args, n, seed):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        rows = rng.integers(0, keys.size, (args.batch, args.slots, 1))
        out.append((torch.from_numpy(rng.standard_normal((args.batch, 13)).astype(np.float32)),
                    torch.from_numpy(rows), torch.from_numpy(keys[rows]),
                    torch.from_numpy(rng.integers(0, 2, (args.batch, 1)).astype(np.float32))))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batch", type=int, default=4096)
    ap.add_argument("--slots", type=int, default=26)
    ap.add_argument("--keys", type=int, default=1_000_000, help="keys in the table")
    ap.add_argument("--bottom", type=int, nargs="+", default=[512, 256, 128])
    ap.add_argument("--top", type=int, nargs="+", default=[1024, 1024, 512, 256])
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--steps", type=int, default=1, help="steps per model per round")
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--modes", nargs="+", default=["dense", "sparse"],
                    choices=["dense", "sparse"], help="embedding gradients: dense (SGD on "
                    "the whole table) or sparse (SGD on the batch's rows)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        art, keys = build(args, tmp)
        print(f"DLRM: {args.slots} slots x {args.bottom[-1]}, {keys.size} hashed keys, bottom "
              f"{args.bottom}, top {args.top}; batch {args.batch}; torch {torch.__version__}, "
              f"{args.threads} threads, {platform.processor() or platform.machine()}")
        data = batches(keys, args, 4, seed=1)
        for mode in args.modes:
            sparse = mode == "sparse"
            module = ht.load_model(art.graph_config, art.dense_model, art.sparse_models,
                                   max_new_keys=0, sparse_grad=sparse)
            hand = HandDLRM(keys.size, args.bottom[-1], 13, args.bottom, args.top, sparse)
            hand.build_top(args.slots)
            copy_weights(module, hand, args)
            dense, rows, hashed, label = data[0]
            module.eval()
            with torch.no_grad():  # the same function, so the timing compares like with like
                a = module(dense=dense[:64], data1=hashed[:64])["label"]
                b = torch.sigmoid(hand(dense[:64], rows[:64]))
            assert torch.allclose(a, b, atol=1e-5), float((a - b).abs().max())
            module.train()
            hand.train()
            opt_m = torch.optim.SGD(module.parameters(), lr=0.01)
            opt_h = torch.optim.SGD(hand.parameters(), lr=0.01)
            bce = nn.BCEWithLogitsLoss()

            def step_module(d):
                opt_m.zero_grad()
                module.loss({"dense": d[0], "data1": d[2]}, d[3]).backward()
                opt_m.step()

            def step_hand(d):
                opt_h.zero_grad()
                bce(hand(d[0], d[1]), d[3]).backward()
                opt_h.step()

            times = {"hugectr2onnx": [], "hand-written": []}
            ratios = []
            for fn in (step_module, step_hand):  # warm-up
                fn(data[0])
            pair = (("hugectr2onnx", step_module), ("hand-written", step_hand))
            for r in range(args.rounds):
                # A B B A ...: each pair of steps sees the same load on a shared machine
                took = {}
                for name, fn in (pair if r % 2 == 0 else pair[::-1]):
                    t0 = time.perf_counter()
                    for s in range(args.steps):
                        fn(data[(r + s) % len(data)])
                    took[name] = (time.perf_counter() - t0) / args.steps
                    times[name].append(took[name])
                ratios.append(took["hand-written"] / took["hugectr2onnx"])
            med = {k: statistics.median(v) for k, v in times.items()}
            print(f"\n{mode} embedding gradients, SGD, {args.rounds} rounds x {args.steps} "
                  f"steps per model:")
            for name, t in med.items():
                print(f"  {name:13s} {t * 1e3:8.1f} ms/step  {args.batch / t:10.0f} samples/s")
            print(f"  ratio of medians (hand-written time / hugectr2onnx time): "
                  f"{med['hand-written'] / med['hugectr2onnx']:.2f}x")
            print(f"  median of per-round ratios: {statistics.median(ratios):.2f}x "
                  f"(min {min(ratios):.2f}, max {max(ratios):.2f})")


if __name__ == "__main__":
    main()
