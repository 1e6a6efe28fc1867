"""predict on an embedding-collection model (26 multi-hot inputs of slot_num 1, I32 keys):
the metadata says how to feed it, and the predictions equal ONNX Runtime's on the arrays
the Norm file was written from, in the same consecutive batches."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort

from ebc_models import dlrm_dcnv2, write_model
from hugectr2onnx import converter
from hugectr2onnx.data import DataLayout
from hugectr2onnx.data.writers import write_norm
from hugectr2onnx.predict import predict

N, BATCH = 300, 128


def test_collection_model_scores_a_norm_file(tmp_path):
    builder, doc = dlrm_dcnv2()
    art, desc, _ = write_model(tmp_path, builder, doc)
    out = tmp_path / "m.onnx"
    converter.convert(str(out), art.graph_config, art.dense_model, True, None, None,
                      embedding_collection=desc, key_type="I32")
    layout = DataLayout.from_onnx(out)
    assert len(layout.sparse) == 26 and {s.slot_num for s in layout.sparse} == {1}
    rng = np.random.default_rng(0)
    labels = (rng.random((N, 1)) < 0.3).astype(np.float32)
    dense = rng.standard_normal((N, layout.dense_dim)).astype(np.float32)
    keys = []
    for s in layout.sparse:  # fewer keys than the hotness in some samples: padded
        k = rng.integers(0, 450, (N, 1, s.max_nnz))
        count = rng.integers(1, s.max_nnz + 1, (N, 1, 1))
        keys.append(np.where(np.arange(s.max_nnz) < count, k, layout.padding_key))
    write_norm(tmp_path / "a.bin", layout, labels, dense, keys)
    result = predict(out, tmp_path / "a.bin", "norm", batch_size=BATCH)
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    want = np.concatenate([sess.run(["label"], {
        layout.dense_name: dense[lo:lo + BATCH],
        **{s.name: k[lo:lo + BATCH] for s, k in zip(layout.sparse, keys)}})[0]
        for lo in range(0, N, BATCH)])
    np.testing.assert_allclose(result.outputs["label"], want, atol=1e-6)
