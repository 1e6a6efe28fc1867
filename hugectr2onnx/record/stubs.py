"""Stand-ins for modules a training script imports besides ``hugectr``: ``mpi4py`` (one
process of rank 0) and, on request, permissive stubs of anything else (e.g. MLPerf loggers),
installed through a meta-path finder so that submodule imports work too."""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import types


class _Comm:
    def Get_size(self):
        return 1

    def Get_rank(self):
        return 0

    size, rank = 1, 0

    def Barrier(self):
        pass

    barrier = Barrier

    def bcast(self, obj, root=0):
        return obj

    def allreduce(self, obj, op=None):
        return obj

    def allgather(self, obj):
        return [obj]

    def gather(self, obj, root=0):
        return [obj]


def mpi4py_modules() -> dict[str, types.ModuleType]:
    pkg = types.ModuleType("mpi4py")
    mpi = types.ModuleType("mpi4py.MPI")
    mpi.COMM_WORLD = _Comm()
    mpi.SUM, mpi.MAX, mpi.MIN = "sum", "max", "min"
    mpi.Init = mpi.Finalize = lambda *a, **k: None
    pkg.MPI = mpi
    pkg.__path__ = []
    return {"mpi4py": pkg, "mpi4py.MPI": mpi}


class Anything:
    """Accepts every call and attribute, returning another Anything; subclassable."""

    def __init__(self, *args, **kwargs):
        pass

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return Anything()

    def __call__(self, *args, **kwargs):
        return Anything()

    def __iter__(self):
        return iter(())

    def __repr__(self):
        return "<stub>"


class _StubModule(types.ModuleType):
    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        value = type(name, (Anything,), {})
        setattr(self, name, value)
        return value


class StubFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports of ``names`` and their submodules give permissive stub modules."""

    def __init__(self, names):
        self.names = tuple(names)

    def find_spec(self, fullname, path=None, target=None):
        if any(fullname == n or fullname.startswith(n + ".") for n in self.names):
            return importlib.machinery.ModuleSpec(fullname, self, is_package=True)
        return None

    def create_module(self, spec):
        module = _StubModule(spec.name)
        module.__path__ = []
        return module

    def exec_module(self, module):
        pass


def stub_finder(names) -> StubFinder:
    return StubFinder(names)


__all__ = ["Anything", "StubFinder", "mpi4py_modules", "stub_finder"]
