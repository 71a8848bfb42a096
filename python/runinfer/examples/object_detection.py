"""Object detection with Apache Beam and a runinfer engine; writes the same rows as `runinfer run`.

    python -m runinfer.examples.object_detection --input image_file_names.txt --output predictions.csv \\
        --engine_path M.rie [--onnx_path M.onnx] [--dead_letter F] [Beam pipeline options]

Steps: ReadFromText (one image path per line; blank lines and '#' comments skipped, as `runinfer run`)
-> read + decode + preprocess with the engine's "preprocess" metadata, as a decode thread of `runinfer run`
does it (JPEGs resized from their YCbCr planes; a file that cannot be read, decoded or preprocessed goes to
the dead letter with its key, stage and reason); the key carries the transform, hence the original size
-> RunInference(KeyedModelHandler(RunInferenceEngineHandlerNumPy)) -> post-processing (the engine's
"detect" / "labels" metadata, or top-5 for a classifier) -> rows `key;[{...}, ...]` -> WriteToText with
shard_name_template='' so --output is the exact file name. Dead-letter lines are JSON:
{"key":..,"stage":"read|decode|preprocess|infer|postprocess","error":..}.

Rows come in completion order; with the same engine they equal those of `runinfer run` as a set of lines.
"""

from __future__ import annotations

import argparse
import logging
import threading
from typing import Iterable, Optional

import apache_beam as beam
from apache_beam.coders import coders
from apache_beam.io.filesystems import FileSystems
from apache_beam.ml.inference.base import KeyedModelHandler, RunInference
from apache_beam.options.pipeline_options import PipelineOptions

from runinfer import _lib
from runinfer.beam import RunInferenceEngineHandlerNumPy, engine_info
from runinfer.errors import Error
from runinfer.vision import Decoder, PostProcessor, PreprocessSpec, Transform, dead_letter_json

DEAD = "dead_letter"


def clean_key(line: bytes) -> Iterable[bytes]:
    """One line of the input list -> the key, as the C source reads lists: trailing CR removed, cut at a NUL
    byte, blank lines and lines starting with '#' skipped. Keys stay bytes so any file name round-trips."""
    if isinstance(line, str):
        line = line.encode("utf-8", "surrogateescape")
    key = line.rstrip(b"\r\n").split(b"\0", 1)[0]
    if key and not key.startswith(b"#"):
        yield key


def _message(e: BaseException) -> str:
    return e.message if isinstance(e, Error) else f"{type(e).__name__}: {e}"


def _load(decoder: Decoder, key: bytes) -> None:
    """Decode the image a key names into decoder. Local paths are read by the library (same errors as
    `runinfer run`); paths with a scheme (gs://, s3://) through Beam's FileSystems."""
    if b"://" in key and not key.startswith(b"file://"):
        path = key.decode("utf-8", "surrogateescape")
        try:
            with FileSystems.open(path) as f:
                data = f.read()
        except Exception as e:  # noqa: BLE001 - any filesystem failure is a read failure of this record
            raise Error(_lib.RI_ERR_IO, f"'{path}': cannot read: {e}") from None
        decoder.load(data, name=key)
    else:
        decoder.load_file(key[len(b"file://"):] if key.startswith(b"file://") else key)


class ReadAndPreprocess(beam.DoFn):
    """key -> ((key, transform), model input item): read, decode and preprocess as a decode thread of
    `runinfer run` does, with the spec of the engine's metadata; the transform carries the original image
    size. Failures -> dead letter with stage "read", "decode" or "preprocess"."""

    def __init__(self, engine_path: Optional[str], onnx_path: Optional[str], build_options: Optional[dict]):
        self._args = (engine_path, onnx_path, build_options)
        self._spec = None
        self._tls = None

    def setup(self):
        self._spec = PreprocessSpec.for_engine(engine_info(*self._args))
        self._tls = threading.local()

    def _decoder(self) -> Decoder:
        d = getattr(self._tls, "decoder", None)
        if d is None:
            d = self._tls.decoder = Decoder()
        return d

    def process(self, key: bytes):
        d = self._decoder()
        try:
            _load(d, key)
        except Error as e:
            stage = "read" if e.status in (_lib.RI_ERR_IO, _lib.RI_ERR_NOT_FOUND) else "decode"
            yield beam.pvalue.TaggedOutput(DEAD, dead_letter_json(key, stage, e.message))
            return
        try:
            tensor, transform = d.preprocess(self._spec)
        except Error as e:
            yield beam.pvalue.TaggedOutput(DEAD, dead_letter_json(key, "preprocess", e.message))
            return
        yield (key, tuple(transform)), tensor


class FormatRows(beam.DoFn):
    """((key, transform), PredictionResult) -> the row `runinfer run` writes; failures -> dead letter
    "postprocess". Post-processing follows the metadata of the engine that produced the result (its
    model_id), so a model update mid-pipeline also switches labels and detector settings."""

    def __init__(self, engine_path: Optional[str], onnx_path: Optional[str], build_options: Optional[dict]):
        self._args = (engine_path, onnx_path, build_options)
        self._pps: dict = {}

    def setup(self):
        info = engine_info(*self._args)
        self._default = info.model_id
        self._pps = {info.model_id: PostProcessor(info)}

    def _pp(self, model_id: Optional[str]) -> PostProcessor:
        pp = self._pps.get(model_id) if model_id else self._pps[self._default]
        if pp is None:
            onnx = model_id.endswith(".onnx")
            info = engine_info(None if onnx else model_id, model_id if onnx else None, self._args[2])
            pp = self._pps[model_id] = PostProcessor(info)
        return pp

    def process(self, item):
        (key, transform), result = item
        try:
            yield self._pp(result.model_id).format_row(key, result.inference, Transform(*transform))
        except Exception as e:  # noqa: BLE001 - every failure of one record becomes its dead-letter line
            yield beam.pvalue.TaggedOutput(DEAD, dead_letter_json(key, "postprocess", _message(e)))


def failed_batch_lines(failed) -> Iterable[str]:
    """A failed RunInference batch (batch, (exception type, repr, traceback)) -> one dead-letter line per key."""
    batch, exc = failed
    reason = exc[1] if isinstance(exc, (tuple, list)) and len(exc) > 1 else str(exc)
    for item in batch:
        key = item[0][0] if isinstance(item, tuple) and isinstance(item[0], tuple) else item[0]
        yield dead_letter_json(key, "infer", f"inference failed for a batch of {len(batch)}: {reason}")


class DetectObjects(beam.PTransform):
    """PCollection of key bytes (image paths) -> (rows, dead-letter lines), both PCollections of str."""

    def __init__(self, handler: RunInferenceEngineHandlerNumPy, build_options: Optional[dict] = None):
        super().__init__()
        self._handler = handler
        self._args = (handler.engine_path, handler.onnx_path, build_options if build_options is not None
                      else handler._build_options)

    def expand(self, keys):
        inputs = keys | "ReadAndPreprocess" >> beam.ParDo(ReadAndPreprocess(*self._args)).with_outputs(DEAD,
                                                                                                       main="ok")
        results, dlq = (inputs.ok
                        | "RunInference" >> RunInference(KeyedModelHandler(self._handler)).with_exception_handling())
        rows = results | "FormatRows" >> beam.ParDo(FormatRows(*self._args)).with_outputs(DEAD, main="ok")
        infer_dead = dlq.failed_inferences | "FailedBatches" >> beam.FlatMap(failed_batch_lines)
        dead = ((inputs[DEAD], infer_dead, rows[DEAD])
                | "DeadLetters" >> beam.Flatten())
        return rows.ok, dead


def build_pipeline(p: beam.Pipeline, input_path: str, output_path: str, handler: RunInferenceEngineHandlerNumPy,
                   dead_letter_path: str):
    """Adds the whole job to p (the caller runs it)."""
    keys = (p
            | "ReadList" >> beam.io.ReadFromText(input_path, coder=coders.BytesCoder())
            | "Keys" >> beam.FlatMap(clean_key))
    rows, dead = keys | "DetectObjects" >> DetectObjects(handler)
    rows | "WriteRows" >> beam.io.WriteToText(output_path, shard_name_template="")
    dead | "WriteDeadLetter" >> beam.io.WriteToText(dead_letter_path, shard_name_template="")


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--input", required=True, help="text file of image paths, one per line")
    ap.add_argument("--output", required=True, help="rows file (exact name)")
    ap.add_argument("--engine_path", help="engine file (.rie), local or on a Beam filesystem")
    ap.add_argument("--onnx_path", help="ONNX model to (re)build the engine from when it is missing or stale")
    ap.add_argument("--dead_letter", help="dead-letter JSONL (default: OUTPUT.dead-letter.jsonl)")
    ap.add_argument("--min_batch_size", type=int, default=1)
    ap.add_argument("--max_batch_size", type=int, default=32)
    ap.add_argument("--max_batch_duration_secs", type=int, default=None)
    ap.add_argument("--device", default="cpu", help="device of engines built from --onnx_path")
    ap.add_argument("--engine_threads", type=int, default=0, help="CPU threads per inference call (0: engine's)")
    ap.add_argument("--meta", action="append", default=[], metavar="KEY=VALUE",
                    help="metadata of engines built from --onnx_path (preprocess=..., detect=..., labels=...)")
    ap.add_argument("--preprocess_on_device", action="store_true",
                    help="engines built from --onnx_path take uint8 pixels and normalise them on the device")
    known, rest = ap.parse_known_args(argv)
    if not known.engine_path and not known.onnx_path:
        ap.error("give --engine_path, --onnx_path or both")
    return known, rest


def run(argv=None, save_main_session: bool = False):
    """Runs the job to completion and returns the PipelineResult."""
    args, beam_args = parse_args(argv)
    meta = {}
    for kv in args.meta:
        k, sep, v = kv.partition("=")
        if not sep:
            raise SystemExit(f"--meta expects KEY=VALUE, got {kv!r}")
        meta[k] = v
    build_options = {"metadata": meta} if meta else {}
    if args.preprocess_on_device:
        build_options["preprocess_on_device"] = True
    handler = RunInferenceEngineHandlerNumPy(
        args.min_batch_size, args.max_batch_size, engine_path=args.engine_path, onnx_path=args.onnx_path,
        build_options=build_options or None, device=args.device, max_batch_duration_secs=args.max_batch_duration_secs,
        threads=args.engine_threads)
    options = PipelineOptions(beam_args)
    if save_main_session:
        from apache_beam.options.pipeline_options import SetupOptions
        options.view_as(SetupOptions).save_main_session = True
    p = beam.Pipeline(options=options)
    build_pipeline(p, args.input, args.output, handler, args.dead_letter or args.output + ".dead-letter.jsonl")
    result = p.run()
    result.wait_until_finish()
    return result


if __name__ == "__main__":
    logging.getLogger().setLevel(logging.WARNING)
    run()
