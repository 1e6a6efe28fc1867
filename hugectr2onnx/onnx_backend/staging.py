"""Copy embedding tables into the external data file while the conversion goes on.

Checking keys and building lookup indexes is CPU work in this process; copying tables is
disk work the kernel does (``copy_file_range``). Starting the copy first, on a thread,
overlaps the two: a big hashed table converts in about the time of the slower one.
"""

from __future__ import annotations

import os
import threading

import numpy as np
from onnx import TensorProto

from ..progress import progress_bar
from .external import DataFile, ZeroRowTable


class StagedTables:
    """Tables written at the front of ``<model>.data``'s temporary file by a thread.

    ``save_model`` calls ``wait``, then ``continue_file`` to append the remaining tensors
    to the same file; on any failure, ``discard`` stops the copy and removes the file."""

    def __init__(self, temp_path: str, location: str, tables: list[np.ndarray],
                 progress: bool | None = None, kernel_copy: bool = True):
        self.temp_path = temp_path
        self.location = location
        self._tables = list(tables)  # keeps the arrays alive, so their ids stay unique
        self._placed: dict[int, TensorProto] = {}
        self._cancel = threading.Event()
        self._error: BaseException | None = None
        self._file = open(temp_path, "r+b", buffering=0)
        self._pos = 0
        self._progress = progress
        self._kernel_copy = kernel_copy
        self._thread = threading.Thread(target=self._run, name="hugectr2onnx-tables",
                                        daemon=True)
        self._thread.start()

    def _run(self) -> None:
        total = sum(ZeroRowTable(v).nbytes for v in self._tables)
        try:
            with progress_bar(total, f"writing {self.location}", self._progress) as bar:
                out = DataFile(self._file.fileno(), self.location, bar, self._kernel_copy,
                               cancel=self._cancel)
                for vectors in self._tables:
                    self._placed[id(vectors)] = out.add("", ZeroRowTable(vectors))
                self._pos = out.pos
        except BaseException as e:  # handed to the main thread by continue_file
            self._error = e

    def wait(self) -> None:
        """Wait for the copy to end; re-raises its error, if any."""
        self._thread.join()
        if self._error is not None:
            raise self._error

    def proto_for(self, name: str, tensor) -> TensorProto | None:
        """The external TensorProto of ``tensor`` if it is a staged table, else None (call
        after ``wait``)."""
        if not isinstance(tensor, ZeroRowTable) or id(tensor.vectors) not in self._placed:
            return None
        proto = TensorProto()
        proto.CopyFrom(self._placed[id(tensor.vectors)])
        proto.name = name
        return proto

    def continue_file(self, progress=None) -> DataFile:
        """A DataFile that appends after the staged tables (call after ``wait``)."""
        os.lseek(self._file.fileno(), self._pos, os.SEEK_SET)
        out = DataFile(self._file.fileno(), self.location, progress, self._kernel_copy)
        out.pos = self._pos
        return out

    def close(self) -> None:
        self._file.close()

    def discard(self) -> None:
        """Stop the copy, close and remove the temporary file."""
        self._cancel.set()
        self._thread.join()
        self.close()
        try:
            os.unlink(self.temp_path)
        except FileNotFoundError:
            pass
