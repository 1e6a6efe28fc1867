"""``record``: run a HugeCTR training script without HugeCTR or a GPU and write its graph JSON
and its embedding-collection description.

The script runs as ``__main__`` with its own arguments, against a recording stand-in of the
``hugectr`` module (standin.py) and a one-process ``mpi4py``; ``Model.compile()`` ends it.
"""

from __future__ import annotations

import json
import runpy
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path

from ..atomic import atomic_path
from ..errors import InputFileError, OutputError
from ..hugectr.collection_description import parse_description
from ..hugectr.files import existing_file
from ..hugectr.graph_json import parse_graph
from ..layers.base import default_registry
from . import standin
from .stubs import mpi4py_modules, stub_finder
from .to_json import RecordError, description_doc, graph_doc

__all__ = ["record", "RecordResult", "RecordError"]


@dataclass
class RecordResult:
    graph_path: str
    description_path: str | None
    layers: int
    lookups: int


def _run(script: Path, argv: list[str], stubs: list[str]) -> standin.Model:
    saved_modules = dict(sys.modules)
    saved_argv, saved_path = list(sys.argv), list(sys.path)
    finder = stub_finder([*stubs, "hugectr.inference", "hugectr.tools", "hugectr.data_generator"])
    standin.RECORDED.clear()
    try:
        sys.modules["hugectr"] = standin.make_module()
        sys.modules.update(mpi4py_modules())
        sys.meta_path.insert(0, finder)
        sys.argv = [str(script), *argv]
        sys.path.insert(0, str(script.parent))
        runpy.run_path(str(script), run_name="__main__")
    except standin.StopRecording as stop:
        return stop.model
    except SystemExit as e:  # argparse errors and --help end here
        raise RecordError(f"the script exited with status {e.code} before model.compile()",
                          file=str(script))
    except RecordError:
        raise
    except Exception as e:
        frames = [f for f in traceback.extract_tb(e.__traceback__)
                  if Path(f.filename).resolve() != Path(__file__).resolve()]
        at = f" (line {frames[-1].lineno} of {frames[-1].filename})" if frames else ""
        hint = ""
        if isinstance(e, ModuleNotFoundError) and e.name:
            hint = (f"; if the model does not need it, import it as a stub with "
                    f"--stub {e.name.split('.')[0]}")
        raise RecordError(f"the script failed{at}: {type(e).__name__}: {e}{hint}",
                          file=str(script)) from e
    finally:
        sys.meta_path.remove(finder)
        _restore_modules(saved_modules, {"hugectr", "mpi4py", *stubs}, script.parent)
        sys.argv, sys.path[:] = saved_argv, saved_path
    raise RecordError("the script ended without calling model.compile()", file=str(script))


def _restore_modules(saved: dict, injected: set, folder: Path) -> None:
    """Drop the stand-ins and whatever the script imported from its own folder (those
    modules hold the stand-in); keep other new imports (a C extension cannot always be
    imported twice), and put back modules the stand-ins replaced."""
    folder = folder.resolve()
    for name in [n for n in sys.modules if n not in saved]:
        module = sys.modules[name]
        path = getattr(module, "__file__", None)
        mine = path is not None and folder in Path(path).resolve().parents
        if name.split(".")[0] in injected or mine:
            del sys.modules[name]
    for name, module in saved.items():
        if sys.modules.get(name) is not module:
            sys.modules[name] = module


def _write_json(path: Path, doc: dict) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"cannot create the directory: {e.strerror or e}", file=str(path.parent))
    with atomic_path(path) as tmp, open(tmp, "w") as f:
        json.dump(doc, f, indent=2)
        f.write("\n")


def record(script, argv=(), *, graph="graph.json", description="ebc.json",
           dump_dir="dump/embedding_collection_0", stubs=()) -> RecordResult:
    """Run ``script`` with ``argv`` and write ``graph`` and, if the model has an embedding
    collection, ``description`` (its ``dump_dir``, relative to it, is where
    ``model.embedding_dump(path)`` will have written ``path/embedding_collection_0``)."""
    script = existing_file(script, "training script")
    if script.suffix != ".py":
        raise InputFileError("expected a Python training script (.py)", file=str(script))
    model = _run(script, list(argv), list(stubs))
    gdoc = graph_doc(model)
    ddoc = description_doc(model, dump_dir)
    graph, description = Path(graph), Path(description)
    collection = parse_description(ddoc, str(description)) if ddoc else None
    parsed = parse_graph(json.loads(json.dumps(gdoc)), str(graph), default_registry(),
                         collection)  # what convert will read must parse
    _write_json(graph, gdoc)
    if ddoc:
        _write_json(description, ddoc)
    return RecordResult(str(graph), str(description) if ddoc else None, len(parsed.layers),
                        len(ddoc["lookups"]) if ddoc else 0)
