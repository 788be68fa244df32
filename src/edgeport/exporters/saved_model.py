"""TF SavedModel directory. PyTorch and ONNX sources: (torch -> ONNX (dynamo) ->) onnx2tf -> re-signed
SavedModel. Keras sources: Keras's ExportArchive (the Keras TFLite route's SavedModel) -> re-signed SavedModel.

onnx2tf keeps the input names and the dynamic batch but names the outputs ``output_0``...; edgeport
re-saves the model behind a ``serving_default`` signature whose inputs and outputs carry the handle's
names (outputs matched to the ONNX outputs by running both), and records the input and output order in the string
variables ``edgeport_input_names`` / ``edgeport_output_names`` (signature dicts carry no order).
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from edgeport.errors import (
    ConversionError,
    UnsupportedFormatError,
)
from edgeport.exporters import _onnx2tf_compat
from edgeport.exporters.base import ExportOptions, FormatSpec, require
from edgeport.reporting.versions import package_versions
from edgeport.sources.base import ModelHandle

log = logging.getLogger(__name__)

SIGNATURE = "serving_default"
ORDER_VARIABLE = "edgeport_output_names"
INPUT_ORDER_VARIABLE = "edgeport_input_names"


def export(handle: ModelHandle, *, fmt: FormatSpec, path: Path, options: ExportOptions) -> dict:
    """Write the SavedModel directory at ``path``; return manifest notes."""
    from edgeport.exporters import onnx as onnx_exporter

    path = Path(path)
    t0 = time.perf_counter()
    if fmt.precision != "fp32":
        raise UnsupportedFormatError(f"SavedModel export has no precision '{fmt.precision}'")
    if handle.framework not in ("torch", "onnx", "keras"):
        raise UnsupportedFormatError(
            f"SavedModel export from a '{handle.framework}' source is not implemented; supported: torch, onnx, keras"
        )
    _check_signature_names(handle)
    tf = _import_tf()
    notes: dict = {"format": fmt.name, "opset": options.opset, "dynamic_batch": True, "fixed_batch": None,
                   "signature": SIGNATURE}
    if handle.framework == "keras":
        _from_keras(tf, handle, path, options)
        notes.pop("opset")
        notes["route"] = "keras.export.ExportArchive -> tf.saved_model.save (named signature)"
        notes["versions"] = package_versions(("keras", "tensorflow-cpu"))
        notes["seconds"] = round(time.perf_counter() - t0, 3)
        return notes
    import onnx

    model = onnx_exporter.source_onnx(handle, options, {})
    try:
        with tempfile.TemporaryDirectory(dir=options.work_dir, prefix="edgeport_tf_") as tmp:
            tmp = Path(tmp)
            src = tmp / "model.onnx"
            onnx.save_model(model, str(src))
            pristine = src.read_bytes()  # onnx2tf rewrites its input in place
            raw = tmp / "onnx2tf_out"
            # an ONNX source keeps its input layout (onnx2tf would make 3-5-D inputs channels-last)
            keep = [t.name for t in handle.inputs if len(t.shape) in (3, 4, 5)] if handle.framework == "onnx" else []
            _onnx2tf_compat.convert(src, raw, tmp, keep_layout=keep)
            feeds = _sample(handle)
            expected = _run_onnx(pristine, feeds)
            _resign(tf, raw, path, handle, feeds, expected)
    except BaseException:
        if path.exists():
            shutil.rmtree(path, ignore_errors=True)
        raise
    first = "ONNX source" if handle.framework == "onnx" else "torch.onnx.export(dynamo=True)"
    notes["route"] = f"{first} -> onnx2tf -> tf.saved_model.save (named signature)"
    fixed = handle.notes.get("fixed_batch") if handle.framework == "onnx" else None
    notes["dynamic_batch"], notes["fixed_batch"] = fixed is None, fixed
    notes["versions"] = package_versions(("torch", "onnx", "onnx2tf", "tensorflow-cpu", "tf_keras"))
    notes["seconds"] = round(time.perf_counter() - t0, 3)
    return notes


def _from_keras(tf, handle: ModelHandle, path: Path, options: ExportOptions) -> None:
    """The Keras model's ExportArchive, re-signed like the onnx2tf route's output (named outputs, the order
    variables); outputs are matched to the Keras model's by running both."""
    from edgeport.exporters import _torch_compat
    from edgeport.exporters.tflite_keras import write_saved_model
    from edgeport.runtimes.keras import KerasRunner

    try:
        with tempfile.TemporaryDirectory(dir=options.work_dir, prefix="edgeport_tf_") as tmp:
            raw = Path(tmp) / "archive"
            with _torch_compat.quiet():
                write_saved_model(handle, raw)
            feeds = _sample(handle)
            expected = KerasRunner.from_handle(handle).infer(feeds)
            _resign(tf, raw, path, handle, feeds, expected)
    except BaseException:
        if path.exists():
            shutil.rmtree(path, ignore_errors=True)
        raise


#: what a TF signature accepts as an input or output name (TF cuts names at ":", e.g. ``x:0`` -> ``x``)
TF_NAME = r"[A-Za-z0-9.][A-Za-z0-9_.\-/]*"


def _check_signature_names(handle: ModelHandle) -> None:
    """Refuse, before converting, names a SavedModel signature cannot carry (ONNX files converted from TF
    often have ``serving_default_x:0``)."""
    import re

    bad = [n for n in (*handle.input_names, *handle.output_names) if not re.fullmatch(TF_NAME, n)]
    if bad:
        raise ConversionError(f"input/output names {bad} cannot be TF signature names (letters, digits, _ . - / "
                              "only); rename them in the ONNX file to get TFLite / SavedModel artifacts")


def _sample(handle: ModelHandle) -> dict[str, np.ndarray]:
    rows = handle.notes.get("fixed_batch") or 5  # a fixed-batch ONNX source runs that many rows at once
    if handle.reference_inputs is not None:
        feeds = handle.reference_inputs(rows, 1)
        if set(feeds) == set(handle.input_names):
            return {k: np.asarray(v) for k, v in feeds.items()}
    rng = np.random.default_rng(1)
    return {t.name: rng.normal(size=t.example(rows).shape).astype(t.dtype) for t in handle.inputs}


def _run_onnx(data: bytes, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    import onnxruntime as ort

    sess = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(names, feeds), strict=True))


def _resign(tf, raw: Path, path: Path, handle: ModelHandle, feeds: dict, expected: dict) -> None:
    """Re-save ``raw`` behind a signature with the handle's input and output names."""
    loaded = tf.saved_model.load(str(raw))
    fn = loaded.signatures.get(SIGNATURE) or next(iter(loaded.signatures.values()), None)
    if fn is None:
        raise ConversionError("the intermediate SavedModel has no serving signature")
    in_specs = fn.structured_input_signature[1]
    missing = [n for n in handle.input_names if n not in in_specs]
    if missing:
        raise ConversionError(f"the intermediate SavedModel lacks inputs {missing}; it has {sorted(in_specs)}")
    got = {k: v.numpy() for k, v in fn(**{n: tf.constant(feeds[n]) for n in handle.input_names}).items()}
    mapping = _match_outputs(expected, got, handle.output_names)
    names_in = list(handle.input_names)

    @tf.function(input_signature=[tf.TensorSpec(in_specs[n].shape, in_specs[n].dtype, name=n) for n in names_in])
    def serve(*args):
        out = fn(**dict(zip(names_in, args, strict=True)))
        return {name: tf.identity(out[key], name=name) for name, key in mapping.items()}

    module = tf.Module()
    module.inner = loaded
    module.serve = serve
    setattr(module, ORDER_VARIABLE, tf.Variable(list(handle.output_names), trainable=False, dtype=tf.string))
    setattr(module, INPUT_ORDER_VARIABLE, tf.Variable(names_in, trainable=False, dtype=tf.string))
    tf.saved_model.save(module, str(path), signatures={SIGNATURE: serve})


def _match_outputs(expected: dict, got: dict, names) -> dict[str, str]:
    """Handle output name -> onnx2tf output key, by value (onnx2tf's names carry no meaning)."""
    mapping: dict[str, str] = {}
    free = dict(got)
    for name in names:
        ref = np.asarray(expected[name], np.float64)
        best, best_diff = None, np.inf
        for key, val in free.items():
            if val.shape != ref.shape:
                continue
            d = float(np.abs(val - ref).max()) if ref.size else 0.0
            if d < best_diff:
                best, best_diff = key, d
        if best is None or best_diff > 1e-3 + 1e-3 * float(np.abs(ref).max(initial=0.0)):
            raise ConversionError(f"onnx2tf output for '{name}' not found or wrong (max diff {best_diff:.3g})")
        mapping[name] = best
        free.pop(best)
    return mapping


def _import_tf():
    return require("tensorflow", "tensorflow-cpu", "TF SavedModel export", "tf")
