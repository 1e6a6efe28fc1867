# A test script with a dynamic table shared by an average and a concat lookup, single-form
# (feature-major) lookups, int64 keys and v23.08+ Reshape shapes.
import argparse

import hugectr
from mpi4py import MPI

parser = argparse.ArgumentParser()
parser.add_argument("--ev", type=int, default=6)
args = parser.parse_args()
assert MPI.COMM_WORLD.Get_rank() == 0

solver = hugectr.CreateSolver(batchsize=1024, lr=0.001, vvgpu=[[0]], i64_input_key=True,
                              repeat_dataset=True, use_embedding_collection=True)
reader = hugectr.DataReaderParams(data_reader_type=hugectr.DataReaderType_t.Parquet,
                                  source=["./train/_file_list.txt"], eval_source="./val/x.txt",
                                  check_type=hugectr.Check_t.Non, slot_size_array=[0, 0, 50])
optimizer = hugectr.CreateOptimizer(optimizer_type=hugectr.Optimizer_t.Adam)
model = hugectr.Model(solver, reader, optimizer)
model.add(hugectr.Input(label_dim=1, label_name="label", dense_dim=5, dense_name="dense",
                        data_reader_sparse_param_array=[
                            hugectr.DataReaderSparseParam("user", 4, False, 1),
                            hugectr.DataReaderSparseParam("items", 3, True, 1),
                            hugectr.DataReaderSparseParam("cat", 2, True, 1)]))
hashed = hugectr.EmbeddingTableConfig(name="hashed", max_vocabulary_size=-1, ev_size=args.ev)
cats = hugectr.EmbeddingTableConfig(name="cats", max_vocabulary_size=50, ev_size=4)
ebc = hugectr.EmbeddingCollectionConfig()
ebc.embedding_lookup(table_config=hashed, bottom_name="user", top_name="e_user",
                     combiner="average")
ebc.embedding_lookup(table_config=hashed, bottom_name="items", top_name="e_items",
                     combiner="concat")
ebc.embedding_lookup(table_config=cats, bottom_name="cat", top_name="e_cat", combiner="sum")
ebc.shard(shard_matrix=[["hashed", "cats"]], shard_strategy=[("mp", ["hashed", "cats"])])
model.add(ebc)
model.add(hugectr.DenseLayer(layer_type=hugectr.Layer_t.Reshape, bottom_names=["e_user"],
                             top_names=["r_user"], shape=[-1, args.ev]))
model.add(hugectr.DenseLayer(layer_type=hugectr.Layer_t.Reshape, bottom_names=["e_items"],
                             top_names=["r_items"], shape=[-1, 3 * args.ev]))
model.add(hugectr.DenseLayer(layer_type=hugectr.Layer_t.Reshape, bottom_names=["e_cat"],
                             top_names=["r_cat"], leading_dim=4))
model.add(hugectr.DenseLayer(layer_type=hugectr.Layer_t.Concat,
                             bottom_names=["r_user", "r_items", "r_cat", "dense"],
                             top_names=["all"]))
model.add(hugectr.DenseLayer(layer_type=hugectr.Layer_t.InnerProduct, bottom_names=["all"],
                             top_names=["fc1"], num_output=16))
model.add(hugectr.DenseLayer(layer_type=hugectr.Layer_t.ReLU, bottom_names=["fc1"],
                             top_names=["relu1"]))
model.add(hugectr.DenseLayer(layer_type=hugectr.Layer_t.InnerProduct, bottom_names=["relu1"],
                             top_names=["fc2"], num_output=1))
model.add(hugectr.DenseLayer(layer_type=hugectr.Layer_t.BinaryCrossEntropyLoss,
                             bottom_names=["fc2", "label"], top_names=["loss"]))
model.compile()
