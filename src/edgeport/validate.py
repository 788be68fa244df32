"""``edgeport validate``: one artifact against a reference (its source model or another artifact).

Any pair of a PyTorch checkpoint (+ factory) or ``.pt2``, a ``.keras``, an ``.onnx``, a ``.tflite`` and a
SavedModel folder. The reference runs as a source (an ONNX reference is its FP32 graph in ONNX Runtime,
exactly what ``export`` compares with); the artifact runs as the file it is, in its own runtime. Reference
inputs: the reference family's set, ``--reference-inputs FILE.npz`` (one array per input), or seeded random
inputs shaped from the reference's input specs (``--input-range NAME=LO,HI``; a dimension the reference
leaves symbolic takes the artifact's size when it has one). The gate is the artifact's format's default,
inferred from the file (type, and the dtype of its weights and activations), or ``--gate FORMAT``; one
comparator, table, ``validation.json`` and exit codes (0 passed, 1 failed, 2 bad input) as ``export``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from edgeport.errors import ConfigError, SourceError
from edgeport.exporters import gate_for
from edgeport.sources.base import Feeds, ModelHandle, TensorSpec
from edgeport.validation import Comparison, Gate, compare

log = logging.getLogger(__name__)

VALIDATION = "validation.json"
#: label of the gate for an artifact that is a float model without an export format (.keras, a checkpoint)
FLOAT_GATE = "fp32"
_DYNAMIC_INT8_OPS = {"MatMulInteger", "ConvInteger", "DynamicQuantizeLinear", "DynamicQuantizeMatMul"}
_INT8_TYPES = ("INT8", "UINT8", "INT16")


@dataclass(frozen=True)
class ValidateConfig:
    """What ``validate`` does (the CLI's flags as one checked object)."""

    reference_inputs: Path | None = None
    input_ranges: dict = field(default_factory=dict)
    rows: int = 200
    seed: int = 0
    gate: str | None = None  # a format whose default gate applies instead of the inferred one
    gate_overrides: dict = field(default_factory=dict)  # metric -> value, on the gate in force
    tol: float = 1e-4
    device: str = "auto"
    batch_size: int = 256
    factory: str | None = None
    wrapper: str | None = None
    trust_source: bool = False
    input_shapes: tuple[TensorSpec, ...] = ()
    output_names: tuple[str, ...] = ()
    outdir: Path | None = None
    report_json: Path | None = None
    force: bool = False
    command_line: str = ""
    #: the per-layer error report of a quantized .tflite / .onnx against a float reference of the same kind
    per_layer: bool = False
    #: rows of the reference inputs the per-layer report runs (it keeps every tensor of every row)
    per_layer_rows: int = 32

    def __post_init__(self) -> None:
        if self.rows < 2:
            raise ConfigError(f"--reference-rows must be >= 2, got {self.rows}")
        if not self.tol > 0:
            raise ConfigError(f"--tol must be > 0, got {self.tol}")
        if self.batch_size < 1:
            raise ConfigError(f"--batch-size must be >= 1, got {self.batch_size}")
        if self.gate is not None:
            from edgeport.exporters import FORMATS

            if self.gate not in FORMATS and self.gate != FLOAT_GATE:
                raise ConfigError(f"--gate {self.gate}: unknown format; known: {', '.join(sorted(FORMATS.names()))}, "
                                  f"{FLOAT_GATE}")


@dataclass
class ValidateResult:
    artifact: Path
    reference: Path
    format: str
    gate_source: str
    comparison: Comparison
    reference_summary: dict
    io_dtypes: dict | None = None
    input_mapping: dict = field(default_factory=dict)
    output_mapping: dict = field(default_factory=dict)
    reference_notes: dict = field(default_factory=dict)
    size_bytes: int | None = None
    sha256: str | None = None
    files: dict = field(default_factory=dict)
    per_layer: dict | None = None  # PerLayerReport.to_dict() with --per-layer
    per_layer_table: str | None = None

    @property
    def passed(self) -> bool:
        return self.comparison.passed

    @property
    def status(self) -> str:
        return "passed" if self.passed else "failed"

    @property
    def exit_code(self) -> int:
        return 0 if self.passed else 1

    def table_row(self):
        """The object ``reporting.format_table`` prints (export's ArtifactResult)."""
        from edgeport.export import ArtifactResult

        return ArtifactResult(format=self.format, status=self.status, path=self.artifact, size_bytes=self.size_bytes,
                              sha256=self.sha256, comparison=self.comparison, io_dtypes=self.io_dtypes)

    def to_dict(self, command_line: str = "") -> dict:
        return {
            "command_line": command_line,
            "all_passed": self.passed,
            "artifact": {"path": str(self.artifact), "format": self.format, "gate_source": self.gate_source,
                         "size_bytes": self.size_bytes, "sha256": self.sha256, "io_dtypes": self.io_dtypes},
            "reference": {"path": str(self.reference), "notes": self.reference_notes},
            "reference_inputs": self.reference_summary,
            "input_mapping": self.input_mapping,
            "output_mapping": self.output_mapping,
            "artifacts": {self.format: {"status": self.status, "error": None, **self.comparison.to_dict(),
                                        **({"per_layer": self.per_layer} if self.per_layer is not None else {})}},
        }


# ----------------------------------------------------------------------------------------------- gate


def infer_format(path: Path) -> tuple[str, str]:
    """The export format whose default gate judges ``path``, and why: the file type, then the dtypes of its
    weights and activations (INT8 activations -> the full/static INT8 gate, INT8 weights only -> the
    dynamic INT8 gate, FP16 weights -> the FP16 gate). A float model with no export format: ``fp32``."""
    path = Path(path)
    if path.is_dir():
        return "tf", "a SavedModel folder"
    ext = path.suffix.lower()
    if ext == ".onnx":
        return _infer_onnx(path)
    if ext == ".tflite":
        return _infer_tflite(path)
    return FLOAT_GATE, f"a float {ext or 'model'} file (max abs diff <= --tol)"


def _infer_onnx(path: Path) -> tuple[str, str]:
    import onnx
    from onnx import TensorProto

    from edgeport.sources.onnx import all_graphs

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as e:  # noqa: BLE001 - protobuf raises several types
        raise SourceError(f"{path} is not a readable ONNX file ({type(e).__name__})") from None
    graphs = list(all_graphs(model.graph))
    ops = {n.op_type for g in graphs for n in g.node}
    inits = {i.name: i.data_type for g in graphs for i in g.initializer}
    int8 = {TensorProto.INT8, TensorProto.UINT8}
    if ops & _DYNAMIC_INT8_OPS:
        return "onnx_int8", f"ONNX with dynamic INT8 ops ({', '.join(sorted(ops & _DYNAMIC_INT8_OPS))})"
    quantized_activations = any(n.op_type == "QuantizeLinear" and n.input[0] not in inits
                                for g in graphs for n in g.node) or any(o.startswith("QLinear") for o in ops)
    if quantized_activations:
        return "onnx_int8_static", "ONNX with INT8 activations (QuantizeLinear on activations: static INT8)"
    if any(t in int8 for t in inits.values()):
        return "onnx_int8", "ONNX with INT8 weights and float activations"
    fp16_io = any(v.type.tensor_type.elem_type == TensorProto.FLOAT16 for v in model.graph.input)
    if fp16_io or any(t == TensorProto.FLOAT16 for t in inits.values()):
        return ("onnx_fp16_io" if fp16_io else "onnx_fp16"), \
            "ONNX with FP16 weights" + (" and FP16 inputs" if fp16_io else "")
    return "onnx", "ONNX with FP32 weights"


def _infer_tflite(path: Path) -> tuple[str, str]:
    try:
        from ai_edge_litert import schema_py_generated as schema
    except ImportError:
        from edgeport.errors import MissingDependencyError

        raise MissingDependencyError("ai-edge-litert", "Reading TFLite files", "litert") from None
    from edgeport.exporters.tflite_common import tflite_op_names

    data = path.read_bytes()
    if data[4:8] != b"TFL3":
        raise SourceError(f"{path} is not a TFLite model (no TFL3 flatbuffer identifier)")
    names = {v: k for k, v in vars(schema.TensorType).items() if not k.startswith("_")}
    model = schema.Model.GetRootAs(bytearray(data), 0)
    codes = tflite_op_names(data)
    weights: set[str] = set()
    activations: set[str] = set()
    for s in range(model.SubgraphsLength()):
        sg = model.Subgraphs(s)
        for k in range(sg.OperatorsLength()):
            op = sg.Operators(k)
            if codes[op.OpcodeIndex()] in ("QUANTIZE", "DEQUANTIZE"):
                continue
            tensors = [op.Inputs(j) for j in range(op.InputsLength())]
            for t in tensors + [op.Outputs(j) for j in range(op.OutputsLength())]:
                if t < 0:
                    continue
                tensor = sg.Tensors(t)
                const = bool(tensor.Buffer()) and model.Buffers(tensor.Buffer()).DataLength() > 0
                (weights if const else activations).add(names.get(tensor.Type(), str(tensor.Type())))
        for k in range(sg.TensorsLength()):  # FP16 weights feed DEQUANTIZE ops, skipped above
            tensor = sg.Tensors(k)
            if tensor.Buffer() and model.Buffers(tensor.Buffer()).DataLength() > 0:
                weights.add(names.get(tensor.Type(), str(tensor.Type())))
    if activations & set(_INT8_TYPES):
        return "tflite_int8_full", "TFLite with INT8 activations (full-integer)"
    if weights & set(_INT8_TYPES):
        return "tflite_int8", "TFLite with INT8 weights and float activations (dynamic range)"
    if "FLOAT16" in weights:
        return "tflite_fp16", "TFLite with FP16 weights"
    return "tflite", "TFLite with FP32 weights"


def gate_in_force(fmt: str, config: ValidateConfig) -> Gate:
    """The default gate of ``fmt`` (``fp32``: max abs diff <= --tol), then ``--gate METRIC=VALUE``."""
    if fmt == FLOAT_GATE:
        gate = gate_for("onnx", tol=config.tol)  # the FP32 formats share one gate: max abs diff <= --tol
    elif fmt == "onnx_fp16_io":
        gate = gate_for("onnx_fp16", tol=config.tol, fp16_io=True)
    else:
        gate = gate_for(fmt, tol=config.tol)
    return gate.override(**config.gate_overrides) if config.gate_overrides else gate


def parse_gate_args(items: list[str] | None) -> tuple[str | None, dict]:
    """``--gate FORMAT`` (that format's default gate) and ``--gate [FORMAT.]METRIC=VALUE`` (one metric of the
    gate in force) -> (format or None, {metric: value})."""
    fmt = None
    overrides: dict = {}
    for item in items or ():
        if "=" not in item:
            if fmt is not None and fmt != item:
                raise ConfigError(f"--gate names two formats ({fmt}, {item}); pass one")
            fmt = item
            continue
        key, value = item.split("=", 1)
        prefix, _, metric = key.rpartition(".")
        if prefix:
            if fmt is not None and prefix != fmt:
                raise ConfigError(f"--gate {item}: the format differs from --gate {fmt}")
            fmt = prefix
        try:
            overrides[metric] = int(value) if metric == "max_failed_rows" else float(value)
        except ValueError:
            raise ConfigError(f"--gate expects FORMAT, METRIC=VALUE or FORMAT.METRIC=VALUE, got '{item}'") from None
    Gate().override(**overrides)  # unknown metric names and impossible values: one line, before work
    return fmt, overrides


# ----------------------------------------------------------------------------------------------- models


def _is_torch(path: Path) -> bool:
    from edgeport.sources.torch import CHECKPOINT_SUFFIXES

    return Path(path).suffix.lower() in (*CHECKPOINT_SUFFIXES, ".pt2")


def _source_kwargs(path: Path, config: ValidateConfig) -> dict:
    """Loader options for one side: --factory / --wrapper / --output-names belong to a PyTorch file."""
    torch_only = {"factory": config.factory, "wrapper": config.wrapper, "output_names": config.output_names}
    return {"trust_source": config.trust_source, "input_shapes": config.input_shapes,
            **(torch_only if _is_torch(path) else {})}


def open_reference(path: Path, config: ValidateConfig):
    """(runner, handle) of the reference, loaded as a source (family inputs and all)."""
    from edgeport.export import _reference_runner, _resolve_device
    from edgeport.runtimes.base import Runner
    from edgeport.sources import load_source

    path = Path(path)
    if not path.exists():
        raise SourceError(f"--reference not found: {path}")
    if path.is_dir():
        from edgeport.sources.tflite import load_saved_model

        handle = load_saved_model(path, input_shapes=config.input_shapes, input_ranges=config.input_ranges)
    else:
        handle = load_source(path, **_source_kwargs(path, config), input_ranges=config.input_ranges)
    if isinstance(handle.model, Runner):
        return handle.model, handle
    return _reference_runner(handle, _resolve_device(config.device)), handle


def open_artifact(path: Path, config: ValidateConfig):
    """The artifact's runner: the file as it is, in its own runtime (an FP16 ONNX runs as FP16)."""
    from edgeport.runtimes import open_runner
    from edgeport.sources import load_source

    path = Path(path)
    if not path.exists():
        raise SourceError(f"artifact not found: {path}")
    ext = path.suffix.lower()
    if path.is_dir():
        from edgeport.sources.tflite import load_saved_model

        return load_saved_model(path).model
    if ext == ".onnx":
        from edgeport.sources.onnx import read_onnx

        read_onnx(path)  # a readable graph with its external data, or one clear line
        return open_runner("onnxruntime", path)
    if ext == ".keras":
        return open_runner("keras", path, trust_source=config.trust_source)
    if ext == ".tflite":
        from edgeport.sources.tflite import load_tflite

        return load_tflite(path).model
    from edgeport.export import _reference_runner, _resolve_device

    handle = load_source(path, **_source_kwargs(path, config))
    return _reference_runner(handle, _resolve_device(config.device))


def match_names(ref: list[str], art: list[str], what: str, ref_shapes: dict | None = None,
                art_shapes: dict | None = None) -> dict[str, str]:
    """Reference name -> artifact name: the same names; else one each; else by unique shape; else refused."""
    if sorted(ref) == sorted(art):
        return {n: n for n in ref}
    if len(ref) == len(art) == 1:
        return {ref[0]: art[0]}
    if ref_shapes and art_shapes and len(ref) == len(art):
        by_shape: dict = {}
        for n in art:
            by_shape.setdefault(tuple(art_shapes[n]), []).append(n)
        out = {}
        for n in ref:
            cands = by_shape.get(tuple(ref_shapes[n]), [])
            if len(cands) != 1:
                break
            out[n] = cands[0]
        else:
            if len(set(out.values())) == len(out):
                return out
    raise SourceError(f"the artifact's {what} {art} do not match the reference's {ref} (not by name, and not one "
                      f"to one by shape); validate a pair of models of the same signature")


def _merged_specs(ref_specs, art_specs, mapping) -> tuple[TensorSpec, ...]:
    """Reference input specs with the artifact's sizes where the reference leaves a dimension symbolic."""
    art = {t.name: t for t in art_specs}
    out = []
    for t in ref_specs:
        a = art.get(mapping.get(t.name, ""))
        if a is None or len(a.shape) != len(t.shape):
            out.append(t)
            continue
        shape = (t.shape[0], *[r if r is not None else s for r, s in zip(t.shape[1:], a.shape[1:], strict=True)])
        out.append(TensorSpec(t.name, tuple(shape), t.dtype))
    return tuple(out)


def reference_feeds(handle: ModelHandle, art_runner, mapping: dict, config: ValidateConfig) -> tuple[Feeds, dict]:
    """The reference inputs and what they are (for validation.json)."""
    from edgeport.export import load_feeds
    from edgeport.sources.inputs import describe, random_feeds

    if config.reference_inputs is not None:
        feeds = load_feeds(handle, Path(config.reference_inputs), "--reference-inputs")
        return feeds, {"source": str(config.reference_inputs)}
    notes = handle.notes.get("reference_inputs") or {}
    if handle.reference_inputs is not None and notes.get("kind") != "seeded random":
        return handle.reference_inputs(config.rows, config.seed), {"source": f"family {handle.family}",
                                                                   "seed": config.seed}
    specs = _merged_specs(handle.inputs, art_runner.inputs, mapping)
    feeds = random_feeds(specs, config.rows, config.seed, ranges=config.input_ranges)
    return feeds, {"source": "seeded random", "seed": config.seed, **describe(specs, config.input_ranges)}


# ----------------------------------------------------------------------------------------------- main


def plan_files(config: ValidateConfig):
    """The outputs of this validation, checked before any work (existing ones need --force)."""
    from edgeport.fileio import OutputPlan

    plan = OutputPlan(force=config.force, what="an earlier validation",
                      hint="pass --force to replace it or choose another --outdir / --report-json")
    if config.outdir is not None:
        if Path(config.outdir).exists() and not Path(config.outdir).is_dir():
            raise ConfigError(f"--outdir {config.outdir} is a file; choose a directory")
        plan.add(Path(config.outdir) / VALIDATION)
    if config.report_json is not None:
        plan.add(config.report_json)
    plan.check()
    return plan


def validate(artifact: str | Path, reference: str | Path, config: ValidateConfig | None = None,
             **kwargs) -> ValidateResult:
    """Compare ``artifact`` with ``reference`` on reference inputs; write ``validation.json`` into
    ``config.outdir`` and/or ``config.report_json`` when given. ``kwargs`` build the config when none is given."""
    from edgeport.fileio import atomic_write_json, path_size, sha256_path

    config = config or ValidateConfig(**kwargs)
    artifact, reference = Path(artifact), Path(reference)
    if config.per_layer and {artifact.suffix.lower(), reference.suffix.lower()} not in ({".tflite"}, {".onnx"}):
        raise ConfigError(f"--per-layer compares a quantized .tflite with its float .tflite, or a quantized .onnx "
                          f"with its FP32 .onnx; got {artifact.name} and {reference.name}: pass the float artifact "
                          "as --reference")
    with plan_files(config) as plan:
        if not artifact.exists():
            raise SourceError(f"artifact not found: {artifact}")
        given = [f for f, v in (("--factory", config.factory), ("--wrapper", config.wrapper),
                                ("--output-names", config.output_names)) if v]
        if given and not (_is_torch(artifact) or _is_torch(reference)):
            raise ConfigError(f"{', '.join(given)} apply to a PyTorch checkpoint or .pt2, and neither the artifact "
                              "nor the reference is one; drop them")
        if config.gate is not None:
            fmt, why = config.gate, "chosen with --gate"
        else:
            fmt, why = infer_format(artifact)
            why = f"inferred: {why}"
        gate = gate_in_force(fmt, config)
        ref_runner, handle = open_reference(reference, config)
        art_runner = open_artifact(artifact, config)
        in_map = match_names(list(handle.input_names), [t.name for t in art_runner.inputs], "inputs",
                             {t.name: t.shape[1:] for t in handle.inputs},
                             {t.name: t.shape[1:] for t in art_runner.inputs})
        feeds, summary = reference_feeds(handle, art_runner, in_map, config)
        summary["rows"] = int(next(iter(feeds.values())).shape[0])
        ref_out, ref_failed = ref_runner.run(feeds, batch_size=config.batch_size)
        if ref_failed.any():
            raise SourceError(f"the reference itself failed on {int(ref_failed.sum())} of {ref_failed.size} "
                              "reference inputs; check --reference-inputs / --input-range")
        got, failed = art_runner.run({in_map[k]: v for k, v in feeds.items()}, batch_size=config.batch_size)
        out_map = match_names(list(ref_out), list(got), "outputs", {k: v.shape[1:] for k, v in ref_out.items()},
                              {k: v.shape[1:] for k, v in got.items()})
        io = art_runner.io_dtypes()
        cmp = compare(ref_out, {r: got[a] for r, a in out_map.items()}, gate, failed=failed, io_dtypes=io)
        result = ValidateResult(
            artifact=artifact, reference=reference, format=fmt, gate_source=why, comparison=cmp,
            reference_summary=summary, io_dtypes=io, input_mapping=in_map, output_mapping=out_map,
            reference_notes={k: v for k, v in handle.notes.items() if k != "reference_inputs"} | {
                "framework": handle.framework, "family": handle.family},
            size_bytes=path_size(artifact), sha256=sha256_path(artifact),
        )
        if config.per_layer:
            from edgeport.validation.per_layer import per_layer

            rows = min(config.per_layer_rows, summary["rows"])
            report = per_layer(artifact, reference, {in_map[k]: v[:rows] for k, v in feeds.items()})
            result.per_layer = report.to_dict()
            result.per_layer_table = report.table()
        data = result.to_dict(config.command_line)
        for final in plan.finals:
            atomic_write_json(plan.staged(final), data)
            result.files[final.name] = final
        plan.commit()
    return result
