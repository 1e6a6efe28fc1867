# A DLRM-DCNv2 training script written for these tests in the style of HugeCTR's
# samples/dlrm/train.py: argparse, MPI, a callback subclass, list-form lookups, shard().
import argparse

from mpi4py import MPI

import hugectr
import dcn_logger

VOCAB = [400, 39, 17, 74, 20, 3, 71, 15, 63, 400, 306, 405, 10, 22, 119, 155, 4, 97, 14, 400,
         400, 400, 59, 129, 108, 36]
HOTNESS = [3, 2, 1, 2, 6, 1, 1, 1, 1, 7, 3, 8, 1, 6, 9, 5, 1, 1, 1, 12, 100, 27, 10, 3, 1, 1]

parser = argparse.ArgumentParser(description="DCN v2 test script")
parser.add_argument("--batchsize", type=int, default=8192)
parser.add_argument("--ev_size", type=int, default=8)
parser.add_argument("--projection_dim", type=int, default=16)
parser.add_argument("--num_gpus_per_node", type=int, default=8)
parser.add_argument("--optimizer", choices=["adagrad", "sgd"], default="adagrad")
parser.add_argument("--use_mixed_precision", action="store_true")
args = parser.parse_args()

comm = MPI.COMM_WORLD
num_nodes = comm.Get_size()
num_gpus = num_nodes * args.num_gpus_per_node
callback = dcn_logger.AucCallback(0.8025)

solver = hugectr.CreateSolver(
    model_name="dcnv2", batchsize=args.batchsize, batchsize_eval=args.batchsize,
    vvgpu=[list(range(args.num_gpus_per_node)) for _ in range(num_nodes)], repeat_dataset=True,
    lr=0.005, use_mixed_precision=args.use_mixed_precision, use_cuda_graph=True,
    all_reduce_algo=hugectr.AllReduceAlgo.NCCL, use_embedding_collection=True,
    training_callbacks=[callback])
if args.optimizer == "adagrad":
    optimizer = hugectr.CreateOptimizer(optimizer_type=hugectr.Optimizer_t.AdaGrad,
                                        update_type=hugectr.Update_t.Global,
                                        initial_accu_value=0.0, epsilon=1e-8)
else:
    optimizer = hugectr.CreateOptimizer(optimizer_type=hugectr.Optimizer_t.SGD,
                                        update_type=hugectr.Update_t.Local, atomic_update=True)
reader = hugectr.DataReaderParams(
    data_reader_type=hugectr.DataReaderType_t.RawAsync, source=["/data/train_data.bin"],
    eval_source="/data/val_data.bin", check_type=hugectr.Check_t.Non, slot_size_array=VOCAB,
    async_param=hugectr.AsyncParam(num_threads=1, num_batches_per_thread=16,
                                   multi_hot_reader=True, is_dense_float=True))
model = hugectr.Model(solver, reader, optimizer)
model.add(hugectr.Input(
    label_dim=1, label_name="label", dense_dim=13, dense_name="dense",
    data_reader_sparse_param_array=[
        hugectr.DataReaderSparseParam("data{}".format(i), HOTNESS[i], True, 1)
        for i in range(len(VOCAB))]))

tables = [hugectr.EmbeddingTableConfig(name=str(i), max_vocabulary_size=VOCAB[i],
                                       ev_size=args.ev_size) for i in range(len(VOCAB))]
ebc_config = hugectr.EmbeddingCollectionConfig(
    use_exclusive_keys=True, comm_strategy=hugectr.CommunicationStrategy.Uniform)
ebc_config.embedding_lookup(table_config=tables,
                            bottom_name=["data{}".format(i) for i in range(len(VOCAB))],
                            top_name="sparse_embedding",
                            combiner=["sum" for _ in range(len(VOCAB))])
shard_matrix = [[str(t) for t in range(len(VOCAB)) if t % num_gpus == g] for g in range(num_gpus)]
ebc_config.shard(shard_matrix=shard_matrix,
                 shard_strategy=[("mp", [str(i) for i in range(len(VOCAB))])])
model.add(ebc_config)

compute_config = hugectr.DenseLayerComputeConfig(async_wgrad=True, fuse_wb=False)
model.add(hugectr.DenseLayer(layer_type=hugectr.Layer_t.MLP, bottom_names=["dense"],
                             top_names=["mlp1"], num_outputs=[32, 16, 8],
                             act_type=hugectr.Activation_t.Relu, compute_config=compute_config))
model.add(hugectr.DenseLayer(layer_type=hugectr.Layer_t.Concat,
                             bottom_names=["sparse_embedding", "mlp1"], top_names=["concat1"]))
model.add(hugectr.DenseLayer(layer_type=hugectr.Layer_t.MultiCross, bottom_names=["concat1"],
                             top_names=["interaction1"], projection_dim=args.projection_dim,
                             num_layers=3, compute_config=compute_config))
model.add(hugectr.DenseLayer(
    layer_type=hugectr.Layer_t.MLP, bottom_names=["interaction1"], top_names=["mlp2"],
    num_outputs=[32, 32, 16, 1],
    activations=[hugectr.Activation_t.Relu] * 3 + [hugectr.Activation_t.Non],
    compute_config=compute_config))
model.add(hugectr.DenseLayer(layer_type=hugectr.Layer_t.BinaryCrossEntropyLoss,
                             bottom_names=["mlp2", "label"], top_names=["loss"]))
try:
    model.compile()
except Exception:
    raise SystemExit("compile failed")
model.summary()
model.fit(max_iter=1000, display=100, eval_interval=100, snapshot=2000000, snapshot_prefix="dlrm")
model.embedding_dump("/checkpoints/emb")
raise RuntimeError("the recorder must stop at compile()")
