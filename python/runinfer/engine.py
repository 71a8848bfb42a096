"""Engines and execution contexts: build from ONNX, load and save .rie files, run batches of numpy arrays.

Lifetimes (as in include/runinfer/engine.h): an Engine owns the C engine; a Context owns one C execution
context and keeps its Engine alive. Engine.close() first destroys every context made from it (so the C
rule "the engine outlives its contexts" always holds), then the engine; a closed object raises Error.

Thread safety: an Engine may be shared by any number of threads. A Context serves one thread at a time
(calls on one Context are serialised by a lock). Engine.run() uses a per-thread context pool, so calling
it from several threads runs them in parallel (ctypes releases the GIL during inference). close() may be
called while other threads run: it waits for runs in progress, and later calls raise Error.
"""

from __future__ import annotations

import ctypes
import json
import os
import threading
from typing import Any, Mapping, NamedTuple, Sequence

import numpy as np

from runinfer import _lib
from runinfer._outpool import OutputPool
from runinfer.errors import Error, check

_DTYPES = {
    1: np.dtype(np.float32), 2: np.dtype(np.uint8), 3: np.dtype(np.int8), 4: np.dtype(np.uint16),
    5: np.dtype(np.int16), 6: np.dtype(np.int32), 7: np.dtype(np.int64), 9: np.dtype(np.bool_),
    10: np.dtype(np.float16), 11: np.dtype(np.float64), 12: np.dtype(np.uint32), 13: np.dtype(np.uint64),
}
_PRECISIONS = {"fp32": _lib.RI_PRECISION_FP32, "fp16": _lib.RI_PRECISION_FP16, "int8": _lib.RI_PRECISION_INT8}


def numpy_dtype(code: int) -> np.dtype:
    """numpy dtype of an ri_dtype code; Error(RI_ERR_UNSUPPORTED) for codes without one."""
    try:
        return _DTYPES[int(code)]
    except KeyError:
        raise Error(_lib.RI_ERR_UNSUPPORTED, f"element type code {code} has no numpy equivalent") from None


class TensorInfo(NamedTuple):
    """One engine input or output. shape[0] is -1 when the engine takes any batch from 1 to max_batch."""
    name: str
    dtype: np.dtype
    shape: tuple


def _tensor_info(c: _lib.TensorInfoC) -> TensorInfo:
    return TensorInfo(_lib.text(c.name), numpy_dtype(c.dtype), tuple(int(c.dims[k]) for k in range(c.rank)))


class EngineInfo(NamedTuple):
    """A picklable summary of an engine: what a Beam DoFn on another machine needs to prepare inputs and
    read outputs without holding the engine. metadata maps every key to its value."""
    model_id: str
    max_batch: int
    inputs: tuple
    outputs: tuple
    metadata_map: dict

    def metadata(self, key: str, default: str | None = None) -> str | None:
        return self.metadata_map.get(key, default)


class _Cell:
    """A C handle that can be destroyed exactly once, by whichever of its owners gets there first. lock is
    held while the handle is in use (a context's run) and while it is destroyed."""
    __slots__ = ("ptr", "lock")

    def __init__(self, ptr: int | None):
        self.ptr = ptr
        self.lock = threading.RLock()


class Engine:
    """An optimized model. Create with Engine.build(), Engine.build_bytes(), Engine.load() or
    Engine.load_bytes(); never directly."""

    def __init__(self, handle: ctypes.c_void_p, source: str):
        self._cell = _Cell(handle.value)
        self._source = source
        # guards describe_json's engine-owned buffer and _contexts; reentrant because a Context's __del__ may run
        # (garbage collection) while this thread holds it
        self._lock = threading.RLock()
        self._contexts: set[_Cell] = set()  # every live context, destroyed before the engine
        self._local = threading.local()
        L = _lib.lib()
        self._inputs = tuple(self._info(L.ri_engine_input_info, i) for i in range(L.ri_engine_num_inputs(self._h)))
        self._outputs = tuple(self._info(L.ri_engine_output_info, i)
                              for i in range(L.ri_engine_num_outputs(self._h)))
        self._max_batch = int(L.ri_engine_max_batch(self._h))

    # ---- creation -----------------------------------------------------------------------------------

    @staticmethod
    def _builder(max_batch: int, device: str, precision: str | int, threads: int,
                 metadata: Mapping[str, str] | None, builder_level: int | None = None,
                 timing_cache: str | os.PathLike | None = None,
                 preprocess_on_device: bool = False, half_accumulation: bool = False) -> ctypes.c_void_p:
        L = _lib.lib()
        b = ctypes.c_void_p()
        check(L.ri_builder_create(ctypes.byref(b)), "cannot create a builder")
        try:
            err = lambda: _lib.text(L.ri_builder_last_error(b))  # noqa: E731
            if isinstance(precision, str):
                if precision not in _PRECISIONS:
                    raise Error(_lib.RI_ERR_INVALID_ARG,
                                f"precision '{precision}' is not one of {', '.join(_PRECISIONS)}")
                precision = _PRECISIONS[precision]
            check(L.ri_builder_set_max_batch(b, int(max_batch)), err)
            check(L.ri_builder_set_device(b, _lib.cstr(device)), err)
            check(L.ri_builder_set_precision(b, int(precision)), err)
            check(L.ri_builder_set_threads(b, int(threads)), err)
            if builder_level is not None:
                check(L.ri_builder_set_builder_level(b, int(builder_level)), err)
            if timing_cache is not None:
                check(L.ri_builder_set_timing_cache(b, _lib.cstr(timing_cache)), err)
            for k, v in (metadata or {}).items():
                check(L.ri_builder_set_metadata(b, _lib.cstr(k), _lib.cstr(v)), err)
            if preprocess_on_device:
                check(L.ri_builder_set_preprocess_on_device(b, 1), err)
            if half_accumulation:
                check(L.ri_builder_set_half_accumulation(b, 1), err)
        except BaseException:
            L.ri_builder_destroy(b)
            raise
        return b

    @classmethod
    def build(cls, onnx_path: str | os.PathLike, max_batch: int = 1, device: str = "cpu",
              precision: str | int = "fp32", threads: int = 0,
              metadata: Mapping[str, str] | None = None, builder_level: int | None = None,
              timing_cache: str | os.PathLike | None = None,
              preprocess_on_device: bool = False, half_accumulation: bool = False) -> "Engine":
        """Import, optimize and compile an ONNX file. metadata key/values are stored in the engine (and in
        its file when saved): "preprocess", "detect", "labels", ... (see include/runinfer/pipeline.h).
        builder_level (0..5, default 3) and timing_cache (a file path) control tactic timing on a GPU
        (ri_builder_set_builder_level, ri_builder_set_timing_cache); CPU engines ignore them.
        preprocess_on_device: the image input becomes uint8 HWC and the engine normalises it as the
        "preprocess" metadata says (ri_builder_set_preprocess_on_device).
        half_accumulation: fp16 CUDA engines sum their 3x3 depthwise layers in half precision (faster, a
        little less accurate; ri_builder_set_half_accumulation); other engines ignore it."""
        L = _lib.lib()
        b = cls._builder(max_batch, device, precision, threads, metadata, builder_level, timing_cache,
                         preprocess_on_device, half_accumulation)
        try:
            e = ctypes.c_void_p()
            check(L.ri_builder_build_onnx(b, _lib.cstr(onnx_path), ctypes.byref(e)),
                  lambda: _lib.text(L.ri_builder_last_error(b)))
        finally:
            L.ri_builder_destroy(b)
        return cls(e, os.fspath(onnx_path) if not isinstance(onnx_path, bytes) else _lib.text(onnx_path))

    @classmethod
    def build_bytes(cls, data: bytes, base_dir: str | os.PathLike, max_batch: int = 1, device: str = "cpu",
                    precision: str | int = "fp32", threads: int = 0, metadata: Mapping[str, str] | None = None,
                    source: str = "<memory>", builder_level: int | None = None,
                    timing_cache: str | os.PathLike | None = None,
                    preprocess_on_device: bool = False, half_accumulation: bool = False) -> "Engine":
        """Same as build() from the bytes of an ONNX model; external data files are read from base_dir."""
        L = _lib.lib()
        data = bytes(data)
        b = cls._builder(max_batch, device, precision, threads, metadata, builder_level, timing_cache,
                         preprocess_on_device, half_accumulation)
        try:
            e = ctypes.c_void_p()
            check(L.ri_builder_build_onnx_memory(b, data, len(data), _lib.cstr(base_dir), ctypes.byref(e)),
                  lambda: _lib.text(L.ri_builder_last_error(b)))
        finally:
            L.ri_builder_destroy(b)
        return cls(e, source)

    @staticmethod
    def _runtime(threads: int, device: str | None = None) -> ctypes.c_void_p:
        L = _lib.lib()
        rt = ctypes.c_void_p()
        check(L.ri_runtime_create(ctypes.byref(rt)), "cannot create a runtime")
        st = L.ri_runtime_set_threads(rt, int(threads))
        if st == _lib.RI_OK and device is not None:
            st = L.ri_runtime_set_device(rt, _lib.cstr(device))
        if st != _lib.RI_OK:
            msg = _lib.text(L.ri_runtime_last_error(rt))
            L.ri_runtime_destroy(rt)
            raise Error(st, msg)
        return rt

    @classmethod
    def load(cls, path: str | os.PathLike, threads: int = 0, device: str | None = None) -> "Engine":
        """Load an engine file (.rie). threads overrides the stored thread count (0 keeps it); device
        ("cpu", "cuda:N") loads it onto another device of the kind it was built for (None: its own). An
        engine built for another device model or library version raises Error with status RI_ERR_STALE."""
        L = _lib.lib()
        rt = cls._runtime(threads, device)
        try:
            e = ctypes.c_void_p()
            check(L.ri_runtime_load(rt, _lib.cstr(path), ctypes.byref(e)),
                  lambda: _lib.text(L.ri_runtime_last_error(rt)))
        finally:
            L.ri_runtime_destroy(rt)
        return cls(e, os.fspath(path) if not isinstance(path, bytes) else _lib.text(path))

    @classmethod
    def load_bytes(cls, data: bytes, threads: int = 0, source: str = "<memory>",
                   device: str | None = None) -> "Engine":
        """Load an engine from the bytes of a .rie file (e.g. read from object storage); threads and device
        as for load()."""
        L = _lib.lib()
        data = bytes(data)
        rt = cls._runtime(threads, device)
        try:
            e = ctypes.c_void_p()
            check(L.ri_runtime_load_memory(rt, data, len(data), ctypes.byref(e)),
                  lambda: _lib.text(L.ri_runtime_last_error(rt)))
        finally:
            L.ri_runtime_destroy(rt)
        return cls(e, source)

    # ---- queries ------------------------------------------------------------------------------------

    @property
    def _h(self) -> int:
        p = self._cell.ptr
        if p is None:
            raise Error(_lib.RI_ERR_INVALID_ARG, f"engine '{self._source}' is closed")
        return p

    def _err(self) -> str:
        return _lib.text(_lib.lib().ri_engine_last_error(self._h))

    def _info(self, fn, index: int) -> TensorInfo:
        c = _lib.TensorInfoC()
        check(fn(self._h, index, ctypes.byref(c)), self._err)
        return _tensor_info(c)

    @property
    def inputs(self) -> tuple:
        """The engine's inputs as TensorInfo(name, dtype, shape), in the order run() takes them."""
        return self._inputs

    @property
    def outputs(self) -> tuple:
        """The engine's outputs as TensorInfo(name, dtype, shape), in the order run() returns them."""
        return self._outputs

    @property
    def max_batch(self) -> int:
        return self._max_batch

    @property
    def source(self) -> str:
        """The path it was loaded or built from ("<memory>" or the name given for bytes)."""
        return self._source

    def model_id(self) -> str:
        """The identifier Beam reports as PredictionResult.model_id: the path it was loaded or built from.
        A method (not a property) so that it also works through Beam's cross-process model proxies."""
        return self._source

    def metadata(self, key: str, default: str | None = None) -> str | None:
        """The metadata value for key, or default when the engine has none."""
        with self._lock:
            v = _lib.lib().ri_engine_metadata(self._h, _lib.cstr(key))
            return default if v is None else _lib.text(v)

    def metadata_keys(self) -> list:
        return list(self.describe().get("metadata", {}).keys())

    def describe_json(self) -> str:
        """The engine's JSON description (I/O, options, fingerprint, layers, memory plan, metadata)."""
        L = _lib.lib()
        out = ctypes.c_char_p()
        with self._lock:
            check(L.ri_engine_describe_json(self._h, ctypes.byref(out)), self._err)
            return _lib.text(out.value)

    def describe(self) -> dict:
        """describe_json() parsed."""
        return json.loads(self.describe_json())

    def info(self) -> EngineInfo:
        """A picklable summary (I/O, max batch, all metadata)."""
        return EngineInfo(self._source, self._max_batch, self._inputs, self._outputs,
                          dict(self.describe().get("metadata", {})))

    # ---- saving -------------------------------------------------------------------------------------

    def save(self, path: str | os.PathLike) -> None:
        """Write the engine file. It is written next to path under a temporary name and renamed, so readers
        (other workers loading the same path) never see a partial file. An engine loaded (from a file or
        bytes) on the CPU has freed the float weights it packed and raises Error (RI_ERR_UNSUPPORTED): copy
        its file instead; built engines save."""
        path = os.fspath(path)
        tmp = f"{path}.tmp.{os.getpid()}.{threading.get_ident()}"
        try:
            with self._lock:
                check(_lib.lib().ri_engine_save(self._h, _lib.cstr(tmp)), self._err)
            os.replace(tmp, path)
        except BaseException:
            try:
                os.remove(tmp)
            except OSError:
                pass
            raise

    # ---- running ------------------------------------------------------------------------------------

    def context(self) -> "Context":
        """A new execution context (for one thread at a time)."""
        return Context(self)

    def _thread_context(self) -> "Context":
        ctx = getattr(self._local, "ctx", None)
        if ctx is None or ctx._cell.ptr is None:
            ctx = Context(self)
            self._local.ctx = ctx
        return ctx

    def run_examples(self, examples: Sequence[Any]) -> dict:
        """Run a batch given as its examples (1 .. max_batch of them): each example is one array (single-input
        engines), a tuple/list of arrays in input order, or a dict name -> array, without the batch axis.
        The examples go to the library as the batch's items (ri_context_run_items), which gathers them
        straight into this thread's context's input staging (on a GPU pinned memory, several threads at a
        time, sent while the rest is gathered); returns {output name: array} with the batch axis. Examples of
        another dtype or shape, or more than max_batch of them, take the Engine.run path (numpy stacking,
        the same checks and errors)."""
        n = len(examples)
        if n == 0:
            raise Error(_lib.RI_ERR_INVALID_ARG, "run_examples needs at least one example")
        per_input = _split_examples(self, examples)
        if per_input is None:
            return self.run(*_stack_examples(self, examples))
        if n > self._max_batch:
            return self.run(*[np.stack(col) for col in per_input])
        return self._thread_context()._run_examples(per_input, n)

    def device(self) -> str:
        """The device the engine runs on ("cpu", "cuda:0", ...), from its description. A method, so that it
        also works through Beam's cross-process model proxies."""
        return str(self.describe().get("device", "cpu"))

    def warm_up(self, batch_sizes: Sequence[int], runs: int = 2) -> None:
        """Run zero-filled inputs at each batch size (1 .. max_batch; others are ignored) `runs` times through
        this thread's context, so that what a first run at a batch size does lazily happens now: creating the
        context, and on a GPU the eager first run and the capture of the batch size's CUDA graph (the second
        run). Outputs are discarded."""
        for b in sorted({int(b) for b in batch_sizes if 1 <= int(b) <= self._max_batch}):
            zeros = [np.zeros((b,) + tuple(t.shape[1:]), dtype=t.dtype) for t in self._inputs]
            for _ in range(max(1, int(runs))):
                self.run(*zeros)

    def run(self, *arrays, **named) -> dict:
        """Run inputs with any batch size: batches above max_batch are split into chunks of max_batch and the
        outputs concatenated. Takes arrays in input order, one dict name -> array, or name=array keywords.
        Returns {output name: array}. Uses this thread's context from the engine's per-thread pool."""
        inputs = _normalize_inputs(self, arrays, named)
        batch = inputs[0].shape[0]
        ctx = self._thread_context()
        if batch <= self._max_batch:
            return ctx._run_checked(inputs, batch)
        parts = []
        for start in range(0, batch, self._max_batch):
            stop = min(batch, start + self._max_batch)
            parts.append(ctx._run_checked([a[start:stop] for a in inputs], stop - start))
        return {o.name: np.concatenate([p[o.name] for p in parts], axis=0) for o in self._outputs}

    # ---- lifetime -----------------------------------------------------------------------------------

    def close(self) -> None:
        """Destroy every context of this engine (waiting for runs in progress), then the engine. Later calls
        on the engine or its contexts raise Error."""
        L = _lib.lib() if _lib._lib is not None else None
        with self._lock:
            for cell in list(self._contexts):
                with cell.lock:
                    if cell.ptr is not None and L is not None:
                        L.ri_context_destroy(cell.ptr)
                    cell.ptr = None
            self._contexts.clear()
            if self._cell.ptr is not None and L is not None:
                L.ri_engine_destroy(self._cell.ptr)
            self._cell.ptr = None

    def __enter__(self) -> "Engine":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    def __reduce__(self):
        raise TypeError("a runinfer Engine cannot be pickled; pickle its path (or EngineInfo) and load it "
                        "where it is needed")

    def __repr__(self) -> str:
        state = "closed" if self._cell.ptr is None else f"max_batch={self._max_batch}"
        ins = ", ".join(f"{i.name}:{i.dtype}{list(i.shape)}" for i in self._inputs)
        outs = ", ".join(f"{o.name}:{o.dtype}{list(o.shape)}" for o in self._outputs)
        return f"<runinfer.Engine '{self._source}' {state} inputs=({ins}) outputs=({outs})>"


def _address(a: np.ndarray) -> int:
    """The address of a C-contiguous array's data. A writable array's comes from a buffer export
    (ctypes.c_char.from_buffer, about 0.4 us); a.ctypes.data builds numpy's ctypes helper object first (about
    1.2 us). For the 32 items of a batch this cut the Python time around the library's call from 370 to 335
    us (bench/beam_python_side.py, CPU). Read-only and empty arrays, which cannot be exported writable, take
    a.ctypes.data."""
    try:
        return ctypes.addressof(ctypes.c_char.from_buffer(a))
    except (TypeError, ValueError, BufferError):
        return a.ctypes.data


def _split_examples(engine: Engine, examples: Sequence[Any]):
    """Per engine input, the examples' arrays for it, when every example matches the engine exactly (dtype
    and every non-batch dim, the same form for every example); else None."""
    ins = engine.inputs
    first = examples[0]
    try:
        if isinstance(first, Mapping):
            names = {i.name for i in ins}
            if any(not isinstance(ex, Mapping) or set(ex) != names for ex in examples):
                return None
            cols = [[np.asarray(ex[i.name]) for ex in examples] for i in ins]
        elif isinstance(first, (tuple, list)):
            if any(len(ex) != len(ins) for ex in examples):
                return None
            cols = [[np.asarray(ex[k]) for ex in examples] for k in range(len(ins))]
        elif len(ins) == 1:
            cols = [[np.asarray(ex) for ex in examples]]
        else:
            return None
    except (KeyError, TypeError, IndexError):
        return None
    for info, col in zip(ins, cols):
        item = tuple(info.shape[1:])
        if any(a.dtype != info.dtype or a.shape != item for a in col):
            return None
    return cols


def _stack_examples(engine: Engine, examples: Sequence[Any]) -> list:
    """The examples stacked per input with numpy, as Engine.run's positional arguments (one dict for dict
    examples); Engine.run then checks them and raises its errors. Error(RI_ERR_SHAPE) when they do not
    stack."""
    first = examples[0]
    try:
        if isinstance(first, Mapping):
            return [{k: np.stack([np.asarray(ex[k]) for ex in examples]) for k in first}]
        if isinstance(first, (tuple, list)):
            return [np.stack([np.asarray(ex[k]) for ex in examples]) for k in range(len(first))]
        return [np.stack([np.asarray(ex) for ex in examples])]
    except (ValueError, KeyError, IndexError) as e:
        shapes = sorted({str(_shape_of(ex)) for ex in examples})
        raise Error(_lib.RI_ERR_SHAPE, f"the examples of a batch must share shapes to be stacked; got "
                                       f"{', '.join(shapes)} ({e})") from None


def _shape_of(ex: Any):
    if isinstance(ex, Mapping):
        return {k: tuple(np.shape(v)) for k, v in ex.items()}
    if isinstance(ex, (tuple, list)):
        return [tuple(np.shape(v)) for v in ex]
    return tuple(np.shape(ex))


def _normalize_inputs(engine: Engine, arrays: Sequence[Any], named: Mapping[str, Any]) -> list:
    """The inputs of one run in engine order, checked: count, names, dtype, rank, fixed dims, batch."""
    ins = engine.inputs
    if arrays and named:
        raise Error(_lib.RI_ERR_INVALID_ARG, "give inputs either positionally or by name, not both")
    if len(arrays) == 1 and isinstance(arrays[0], Mapping):
        named, arrays = arrays[0], ()
    if named:
        names = [i.name for i in ins]
        unknown = [k for k in named if k not in names]
        if unknown:
            raise Error(_lib.RI_ERR_INVALID_ARG,
                        f"unknown input {unknown[0]!r}; the engine's inputs are {names}")
        missing = [n for n in names if n not in named]
        if missing:
            raise Error(_lib.RI_ERR_INVALID_ARG, f"input {missing[0]!r} is missing; the engine's inputs are {names}")
        arrays = [named[n] for n in names]
    if len(arrays) != len(ins):
        raise Error(_lib.RI_ERR_INVALID_ARG,
                    f"the engine takes {len(ins)} input(s) ({', '.join(i.name for i in ins)}), got {len(arrays)}")
    out = []
    batch = None
    for info, a in zip(ins, arrays):
        a = np.asarray(a)
        if a.dtype != info.dtype:
            raise Error(_lib.RI_ERR_SHAPE, f"input '{info.name}' is {a.dtype} but the engine expects {info.dtype} "
                                           f"(convert it with .astype(np.{info.dtype.name}))")
        if a.ndim != len(info.shape):
            raise Error(_lib.RI_ERR_SHAPE, f"input '{info.name}' has shape {list(a.shape)} (rank {a.ndim}) but the "
                                           f"engine expects rank {len(info.shape)}: {list(info.shape)} "
                                           "(axis 0 is the batch)")
        for k in range(1, a.ndim):
            if info.shape[k] >= 0 and a.shape[k] != info.shape[k]:
                raise Error(_lib.RI_ERR_SHAPE, f"input '{info.name}' has shape {list(a.shape)} but the engine "
                                               f"expects {list(info.shape)} (axis {k} differs)")
        if info.shape and info.shape[0] >= 0 and a.shape[0] != info.shape[0]:
            raise Error(_lib.RI_ERR_SHAPE, f"input '{info.name}' has batch {a.shape[0]} but the engine's batch "
                                           f"axis is fixed at {info.shape[0]}")
        if batch is None:
            batch = a.shape[0]
        elif a.shape[0] != batch:
            raise Error(_lib.RI_ERR_SHAPE, f"input '{info.name}' has batch {a.shape[0]} but '{ins[0].name}' has "
                                           f"batch {batch}; all inputs need the same batch")
        out.append(a)
    if not out or batch is None or batch < 1:
        raise Error(_lib.RI_ERR_SHAPE, f"batch size must be at least 1, got {batch}")
    return out


class Context:
    """Per-thread execution state of an engine. run() is synchronous; its inputs may be reused as soon as it
    returns, and the output arrays it returns belong to the caller: the context writes into an array again
    only once nothing but the context refers to it (runinfer._outpool)."""

    def __init__(self, engine: Engine):
        L = _lib.lib()
        c = ctypes.c_void_p()
        # under the engine's lock so that close() cannot free the engine while a context is being made
        with engine._lock:
            check(L.ri_context_create(engine._h, ctypes.byref(c)), engine._err)
            self._engine = engine
            self._cell = _Cell(c.value)
            engine._contexts.add(self._cell)
        self._pool = OutputPool()

    @property
    def engine(self) -> Engine:
        return self._engine

    @property
    def _h(self) -> int:
        p = self._cell.ptr
        if p is None:
            raise Error(_lib.RI_ERR_INVALID_ARG, "context is closed (or its engine was closed)")
        return p

    def run(self, *arrays, **named) -> dict:
        """Run one batch (1 .. engine.max_batch items). Inputs: arrays in input order, one dict
        name -> array, or name=array keywords; dtype and every non-batch dim must match the engine.
        Returns {output name: array} with the same batch."""
        inputs = _normalize_inputs(self._engine, arrays, named)
        batch = inputs[0].shape[0]
        if batch > self._engine.max_batch:
            raise Error(_lib.RI_ERR_SHAPE, f"batch {batch} is above the engine's maximum {self._engine.max_batch} "
                                           "(Engine.run splits large batches)")
        return self._run_checked(inputs, batch)

    def _run_examples(self, per_input: list, batch: int) -> dict:
        """Runs per_input[i] (the examples' arrays of input i, checked by _split_examples) as the batch's items
        (ri_context_run_items: the library gathers them into its input staging, in parallel on a GPU)."""
        items = [np.ascontiguousarray(a) for col in per_input for a in col]
        ptrs = (ctypes.c_void_p * len(items))(*[_address(a) for a in items])
        with self._cell.lock:
            return self._run_locked(ptrs, batch, items=True)

    def _run_checked(self, inputs: list, batch: int) -> dict:
        ins = [np.ascontiguousarray(a) for a in inputs]
        with self._cell.lock:
            return self._run_locked(ins, batch)

    def _run_locked(self, ins, batch: int, items: bool = False) -> dict:
        """One ri_context_run of batch items from the arrays ins (dense, engine order), or with items=True one
        ri_context_run_items from ins, a ctypes array of item pointers (input-major), into output arrays from
        the context's pool (runinfer._outpool); the caller holds the context's lock."""
        L = _lib.lib()
        h = self._h

        def make() -> list:
            outs = []
            for i in range(len(self._engine.outputs)):
                c = _lib.TensorInfoC()
                check(L.ri_context_output_shape(h, batch, i, ctypes.byref(c)),
                      lambda: _lib.text(L.ri_context_last_error(h)))
                outs.append(np.empty(tuple(int(c.dims[k]) for k in range(c.rank)), dtype=numpy_dtype(c.dtype)))
            return outs

        outs = self._pool.take(batch, make)
        out_ptrs = (ctypes.c_void_p * max(1, len(outs)))(*[a.ctypes.data for a in outs])
        if items:
            check(L.ri_context_run_items(h, batch, ins, out_ptrs), lambda: _lib.text(L.ri_context_last_error(h)))
        else:
            in_ptrs = (ctypes.c_void_p * max(1, len(ins)))(*[a.ctypes.data for a in ins])
            check(L.ri_context_run(h, batch, in_ptrs, out_ptrs), lambda: _lib.text(L.ri_context_last_error(h)))
        return {o.name: a for o, a in zip(self._engine.outputs, outs)}

    def set_timing(self, on: bool = True) -> None:
        """Turns per-run timing on or off (off by default); see last_timing()."""
        L = _lib.lib()
        with self._cell.lock:
            h = self._h
            check(L.ri_context_set_timing(h, 1 if on else 0), lambda: _lib.text(L.ri_context_last_error(h)))

    def last_timing(self) -> dict:
        """Phases of the last run made while timing was on, in milliseconds: h2d_ms (inputs to the device,
        staging included), compute_ms, d2h_ms, enqueue_ms (host time handing the work to the device). On the
        CPU compute_ms and enqueue_ms are the whole call and the copies are 0. All 0 when timing was off."""
        L = _lib.lib()
        v = [ctypes.c_double() for _ in range(4)]
        with self._cell.lock:
            h = self._h
            check(L.ri_context_last_timing(h, *[ctypes.byref(x) for x in v]),
                  lambda: _lib.text(L.ri_context_last_error(h)))
        return dict(zip(("h2d_ms", "compute_ms", "d2h_ms", "enqueue_ms"), (x.value for x in v)))

    def memory(self) -> dict:
        """Device memory of this context and its engine in bytes: weights (shared by the engine's contexts),
        activations (the arena planned for the maximum batch), other (scratch, staging, workspaces) and
        total. Raises runinfer.Error (RI_ERR_UNSUPPORTED) for CPU contexts."""
        L = _lib.lib()
        v = (ctypes.c_int64 * 4)()
        with self._cell.lock:
            h = self._h
            check(L.ri_context_memory(h, ctypes.byref(v)), lambda: _lib.text(L.ri_context_last_error(h)))
        return dict(zip(("weights", "activations", "other", "total"), v))

    def close(self) -> None:
        eng = self._engine
        with eng._lock, self._cell.lock:
            if self._cell.ptr is not None and _lib._lib is not None:
                _lib._lib.ri_context_destroy(self._cell.ptr)
            self._cell.ptr = None
            eng._contexts.discard(self._cell)
        self._pool.clear()

    def __enter__(self) -> "Context":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    def __reduce__(self):
        raise TypeError("a runinfer Context cannot be pickled")
