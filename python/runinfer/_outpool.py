"""Output arrays of one execution context, reused across runs once nothing outside the pool refers to them.

A run that returns fresh arrays pays for their pages on first write (about 1 ms for the 23 MB of the
reference SSD's outputs at batch 32 on the GPU machine, bench/beam_host_phases.py). The pool keeps the last
few sets of output arrays; a set is handed out again only when Python holds no reference to any of its
arrays except the pool's own: every view, slice or buffer export of an array keeps a reference to it, so
nobody can still read the memory being overwritten. Arrays a caller keeps are simply not reused."""

from __future__ import annotations

import sys
from typing import Callable, List, Sequence

import numpy as np

_MAX_SETS = 2  # sets kept per context: enough for a caller that holds one batch's outputs while running the next


def _refs(arrays: Sequence[np.ndarray]) -> List[int]:
    return [sys.getrefcount(a) for a in arrays]


# what _refs reports for an array held only by the list passed to it (the list, the loop, the call)
_FREE = _refs([np.empty(1)])[0]


class OutputPool:
    def __init__(self) -> None:
        self._sets: list = []  # (batch, [arrays])

    def take(self, batch: int, make: Callable[[], List[np.ndarray]]) -> List[np.ndarray]:
        """A free set of output arrays for this batch size, else a new one from make() (kept when there is
        room, or in place of a free set of another batch size)."""
        for b, arrays in self._sets:
            if b == batch and all(r == _FREE for r in _refs(arrays)):
                return arrays
        fresh = make()
        if len(self._sets) < _MAX_SETS:
            self._sets.append((batch, fresh))
        else:
            for k, (b, arrays) in enumerate(self._sets):
                if b != batch and all(r == _FREE for r in _refs(arrays)):
                    self._sets[k] = (batch, fresh)
                    break
        return fresh

    def clear(self) -> None:
        self._sets.clear()
