"""Apache Beam RunInference model handler for runinfer engines.

    from apache_beam.ml.inference.base import RunInference, KeyedModelHandler
    from runinfer.beam import RunInferenceEngineHandlerNumPy

    handler = RunInferenceEngineHandlerNumPy(min_batch_size=1, max_batch_size=32, engine_path="gs://b/m.rie",
                                             onnx_path="gs://b/m.onnx", build_options={"metadata": {...}})
    preds = examples | RunInference(handler)                 # PCollection[PredictionResult]

Examples are numpy arrays without the batch axis (one per engine input: an ndarray for a one-input engine,
a tuple/list in input order or a dict name -> array for several inputs). A batch is stacked and run with
one inference call (split into chunks of the engine's max batch when larger). PredictionResult.inference
is {output name: array without the batch axis}; PredictionResult.model_id is the engine's path.

Engine paths may be local or on any Beam filesystem (gs://, s3://, ...). When onnx_path is given, an
engine that is missing or stale (built for another device, CPU features or library version:
RI_ERR_STALE) is rebuilt from the ONNX on the worker with build_options; a local engine path is then
rewritten atomically, a remote one is kept only in memory.
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
from typing import Any, Callable, Iterable, Mapping, Optional, Sequence

import numpy as np

try:
    from apache_beam.io.filesystems import FileSystems
    from apache_beam.ml.inference.base import ModelHandler, PredictionResult
except ImportError as e:  # pragma: no cover - exercised only without apache-beam
    raise ImportError("runinfer.beam needs apache-beam: pip install 'runinfer[beam]' (or apache-beam)") from e

from runinfer import _lib
from runinfer.engine import Engine, EngineInfo
from runinfer.errors import Error

__all__ = ["RunInferenceEngineHandlerNumPy", "RunInferEngineHandlerNumPy", "default_inference_fn", "load_engine", "engine_info"]

_log = logging.getLogger(__name__)

_BUILD_KEYS = {"max_batch", "device", "precision", "threads", "metadata", "preprocess_on_device",
               "half_accumulation"}


def _is_remote(path: str) -> bool:
    return "://" in path and not path.startswith("file://")


def _local(path: str) -> str:
    return path[len("file://"):] if path.startswith("file://") else path


def _read_bytes(path: str) -> bytes:
    with FileSystems.open(path) as f:
        return f.read()


def _build(onnx_path: str, options: Mapping[str, Any]) -> Engine:
    if not _is_remote(onnx_path):
        return Engine.build(_local(onnx_path), **options)
    # external data files of a remote model are fetched next to it into a scratch folder
    data = _read_bytes(onnx_path)
    with tempfile.TemporaryDirectory(prefix="runinfer-onnx-") as tmp:
        return Engine.build_bytes(data, tmp, source=onnx_path, **options)


def load_engine(engine_path: Optional[str] = None, onnx_path: Optional[str] = None,
                build_options: Optional[Mapping[str, Any]] = None, threads: int = 0) -> Engine:
    """Load engine_path; with onnx_path, build it when engine_path is None, missing or stale.

    build_options: max_batch, device, precision, threads, metadata, preprocess_on_device, half_accumulation
    (as Engine.build).
    A rebuilt engine is saved to a local engine_path (atomically, so concurrent workers are safe). Raises
    runinfer.Error."""
    opts = dict(build_options or {})
    unknown = set(opts) - _BUILD_KEYS
    if unknown:
        raise ValueError(f"unknown build option(s) {sorted(unknown)}; known: {sorted(_BUILD_KEYS)}")
    if engine_path is None and onnx_path is None:
        raise ValueError("give engine_path, onnx_path or both")
    if engine_path is None:
        eng = _build(onnx_path, opts)
        return eng
    why = None
    try:
        if _is_remote(engine_path):
            if not FileSystems.exists(engine_path):
                raise Error(_lib.RI_ERR_NOT_FOUND, f"engine '{engine_path}' does not exist")
            eng = Engine.load_bytes(_read_bytes(engine_path), threads=threads, source=engine_path)
        else:
            local = _local(engine_path)
            if not os.path.exists(local):
                raise Error(_lib.RI_ERR_NOT_FOUND, f"engine '{engine_path}' does not exist")
            eng = Engine.load(local, threads=threads)
            eng._source = engine_path
        return eng
    except Error as e:
        if onnx_path is None or e.status not in (_lib.RI_ERR_STALE, _lib.RI_ERR_NOT_FOUND):
            raise
        why = e
    _log.warning("runinfer: %s; building it from '%s'", why, onnx_path)
    eng = _build(onnx_path, opts)
    if not _is_remote(engine_path):
        eng.save(_local(engine_path))
    eng._source = engine_path
    return eng


_info_lock = threading.Lock()
_info_cache: dict = {}


def engine_info(engine_path: Optional[str] = None, onnx_path: Optional[str] = None,
                build_options: Optional[Mapping[str, Any]] = None) -> EngineInfo:
    """EngineInfo (I/O and metadata) of the engine load_engine() would give, cached per process: for
    DoFns that prepare inputs or read outputs of a model they do not run."""
    key = (engine_path, onnx_path, repr(sorted((build_options or {}).items())))
    with _info_lock:
        info = _info_cache.get(key)
        if info is None:
            eng = load_engine(engine_path, onnx_path, build_options)
            info = eng.info()
            eng.close()
            _info_cache[key] = info
        return info


def default_inference_fn(batch: Sequence[Any], engine: Engine,
                         inference_args: Optional[dict] = None) -> Iterable[PredictionResult]:
    """Run the batch (Engine.run_examples: stacked straight into the context's input buffers, pinned staging on
    a GPU; one call per max-batch chunk beyond the maximum), and split the outputs per example. Uses only methods of the engine, so it also works through Beam's cross-process proxies
    (large_model / model_copies)."""
    if len(batch) == 0:
        return []
    outs = engine.run_examples(batch)
    model_id = engine.model_id()
    return [PredictionResult(ex, {name: arr[i] for name, arr in outs.items()}, model_id)
            for i, ex in enumerate(batch)]


def _nbytes(ex: Any) -> int:
    if isinstance(ex, Mapping):
        return sum(_nbytes(v) for v in ex.values())
    if isinstance(ex, (tuple, list)):
        return sum(_nbytes(v) for v in ex)
    return int(np.asarray(ex).nbytes)


class RunInferenceEngineHandlerNumPy(ModelHandler[np.ndarray, PredictionResult, Engine]):
    """ModelHandler for runinfer engines (numpy in, PredictionResult out).

    Args:
      min_batch_size, max_batch_size: the batch sizes BatchElements forms (any size works: batches larger
        than the engine's maximum are split into chunks of that maximum).
      engine_path: the .rie file (local or any Beam filesystem path).
      onnx_path: the ONNX model to build from when engine_path is None, missing or stale.
      build_options: options of a build from ONNX: max_batch (default max_batch_size), device (default the
        device argument), precision ("fp32"), threads (0: all CPUs), metadata (dict stored in the engine, e.g.
        "preprocess", "detect", "labels"; give it here because a stale engine's metadata cannot be read),
        preprocess_on_device (True: the engine takes uint8 HWC images and normalises them on its device;
        the example pipeline then sends a quarter of the bytes, see Engine.build), half_accumulation (True:
        fp16 CUDA engines sum their depthwise layers in half precision, see Engine.build).
      device: "cpu", "cuda" or "cuda:N" for builds from ONNX.
      max_batch_duration_secs: the longest a batch waits to fill (streaming).
      inference_fn: replaces default_inference_fn(batch, engine, inference_args).
      large_model, model_copies: share the engine across processes (Beam's multi_process_shared).
      env_vars: environment variables set before the engine is loaded.
      threads: CPU threads per inference call (0 keeps the engine's stored value, usually every CPU). Where
        several SDK threads or processes share a VM, 1 (or cores / processes) avoids oversubscription.
      warm_up: run zero batches of min_batch_size and max_batch_size (each twice) when the model is loaded,
        so that the first real batches do not pay for the context's creation and, on a GPU, for the eager
        first run and the CUDA graph capture of their batch size. None (default): only for CUDA engines.
        The warm-up runs in the loading thread's context; a thread that runs inference first creates its own.
      kwargs: further BatchElements arguments (max_batch_weight, element_size_fn, ...).
    """

    def __init__(self, min_batch_size: int = 1, max_batch_size: int = 32, *, engine_path: Optional[str] = None,
                 onnx_path: Optional[str] = None, build_options: Optional[Mapping[str, Any]] = None,
                 device: str = "cpu", max_batch_duration_secs: Optional[int] = None,
                 inference_fn: Optional[Callable[..., Iterable[PredictionResult]]] = None,
                 large_model: bool = False, model_copies: Optional[int] = None,
                 env_vars: Optional[Mapping[str, str]] = None, threads: int = 0,
                 warm_up: Optional[bool] = None, **kwargs):
        super().__init__()
        if engine_path is None and onnx_path is None:
            raise ValueError("RunInferenceEngineHandlerNumPy needs engine_path, onnx_path or both")
        if int(min_batch_size) < 1 or int(max_batch_size) < int(min_batch_size):
            raise ValueError(f"need 1 <= min_batch_size <= max_batch_size, got {min_batch_size}, {max_batch_size}")
        opts = dict(build_options or {})
        unknown = set(opts) - _BUILD_KEYS
        if unknown:
            raise ValueError(f"unknown build option(s) {sorted(unknown)}; known: {sorted(_BUILD_KEYS)}")
        opts.setdefault("max_batch", int(max_batch_size))
        opts.setdefault("device", device)
        opts.setdefault("threads", int(threads))  # an engine rebuilt on the worker runs with the same threads
        self._engine_path = engine_path
        self._onnx_path = onnx_path
        self._default_paths = (engine_path, onnx_path)
        self._build_options = opts
        self._device = device
        self._threads = int(threads)
        self._inference_fn = inference_fn or default_inference_fn
        self._batching_kwargs = {"min_batch_size": int(min_batch_size), "max_batch_size": int(max_batch_size)}
        if max_batch_duration_secs is not None:
            self._batching_kwargs["max_batch_duration_secs"] = max_batch_duration_secs
        self._batching_kwargs.update(kwargs)
        self._large_model = bool(large_model)
        self._model_copies = model_copies
        self._share_across_processes = bool(large_model) or model_copies is not None
        self._env_vars = dict(env_vars or {})
        self._warm_up = warm_up

    # ---- the ModelHandler interface -------------------------------------------------------------------

    def load_model(self) -> Engine:
        """Load (or build, see load_engine) the current engine; warm it up (see the warm_up argument)."""
        eng = load_engine(self._engine_path, self._onnx_path, self._build_options, self._threads)
        warm = self._warm_up if self._warm_up is not None else eng.device().startswith("cuda")
        if warm:
            sizes = {self._batching_kwargs["min_batch_size"], self._batching_kwargs["max_batch_size"]}
            eng.warm_up([min(b, eng.max_batch) for b in sizes])
        return eng

    def run_inference(self, batch: Sequence[Any], model: Engine,
                      inference_args: Optional[dict] = None) -> Iterable[PredictionResult]:
        return self._inference_fn(batch, model, inference_args)

    def get_num_bytes(self, batch: Sequence[Any]) -> int:
        """Bytes of the examples' arrays (sum of nbytes over every array of every example)."""
        return sum(_nbytes(ex) for ex in batch)

    def get_metrics_namespace(self) -> str:
        return "RunInferenceEngine"

    def batch_elements_kwargs(self) -> Mapping[str, Any]:
        return dict(self._batching_kwargs)

    def validate_inference_args(self, inference_args: Optional[dict]):
        if inference_args:
            raise ValueError("inference_args were given, but runinfer engines take no extra arguments; feed every "
                             f"model input as part of the example instead (got {sorted(inference_args)})")

    def share_model_across_processes(self) -> bool:
        return self._share_across_processes

    def model_copies(self) -> int:
        return self._model_copies or 1

    def update_model_path(self, model_path: Optional[str] = None):
        """Switch to another model (side-input ModelMetadata or WatchFilePattern). A path ending in .onnx is
        built on the worker (in memory, with build_options); any other path is an engine file, which then
        has no ONNX to be rebuilt from. An empty path (ModelMetadata(model_id="")) goes back to the model the
        handler was created with, as Beam specifies, so the result does not depend on the order in which
        windows with different side-input values are processed."""
        if not model_path:
            self._engine_path, self._onnx_path = self._default_paths
            return
        if model_path.endswith(".onnx"):
            self._onnx_path, self._engine_path = model_path, None
        else:
            self._engine_path, self._onnx_path = model_path, None

    # ---- extras ----------------------------------------------------------------------------------------

    @property
    def engine_path(self) -> Optional[str]:
        return self._engine_path

    @property
    def onnx_path(self) -> Optional[str]:
        return self._onnx_path

    def model_info(self) -> EngineInfo:
        """I/O and metadata of the current model (loads it once per process; see engine_info)."""
        return engine_info(self._engine_path, self._onnx_path, self._build_options)

    def __repr__(self) -> str:
        return (f"RunInferenceEngineHandlerNumPy(engine_path={self._engine_path!r}, onnx_path={self._onnx_path!r}, "
                f"batching={self._batching_kwargs})")


# The name issue 5 and the docs of earlier drafts use; the same class.
RunInferEngineHandlerNumPy = RunInferenceEngineHandlerNumPy
