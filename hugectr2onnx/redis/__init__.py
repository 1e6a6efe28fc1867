"""Embedding tables in Redis in HPS's layout, and scoring with a dense-only model on top.

``load_tables`` writes a model's tables; ``RedisScorer`` runs a dense-only ONNX model with the
embeddings looked up in Redis. Needs the ``redis`` extra. See docs/redis.md.
"""

from .layout import DEFAULT_PARTITIONS, partition_key, partition_of, rrxmrrxmsx_0, tag_name
from .load import LoadReport, load_tables
from .lookup import RedisTables
from .scorer import RedisScorer
from .store import RedisOptions, RedisStore

__all__ = ["DEFAULT_PARTITIONS", "LoadReport", "RedisOptions", "RedisScorer", "RedisStore",
           "RedisTables", "load_tables",
           "partition_key", "partition_of", "rrxmrrxmsx_0", "tag_name"]
