"""``edgeport export --family hierarchy``: the seed's deliverables folder, each artifact validated.

Layout (``docs/families/hierarchy.md``)::

    species[_fp16|_int8|_int8_static].onnx        input -> species_logits, embedding (dynamic batch)
    disease-heads/<species>[suffix].onnx          embedding -> disease_logits, one per species
    disease-heads-fused[suffix].onnx              embedding, species_index -> disease_logits (padded), valid_count
    disease-heads-list.json                       species id (training order) -> name, diseases, head files
    ood-detector.npz / .json / .onnx              Mahalanobis OOD detector (no pickle)
    onnx-metadata.json                            names, shapes, dtypes, preprocessing, opset, versions, sha256
    manifest.json, validation.json, report.html

Every ONNX file goes through the ONNX exporter (``exporters/onnx.py``: FP32, FP16, INT8 dynamic, INT8 static),
runs in ONNX Runtime and is judged by the comparator against the PyTorch model: the species model on held-out
images (per output), every head and the fused model on real embeddings of those images, and the fused model
against the per-head files of the same precision for every species.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
import traceback
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from edgeport.errors import ConfigError, EdgeportError, UnsupportedFormatError
from edgeport.export import ArtifactResult
from edgeport.exporters import (
    FORMATS,
    ExportOptions,
    FormatSpec,
    gate_for,
    get_exporter,
)
from edgeport.families.hierarchy.checkpoint import HierarchySource
from edgeport.families.hierarchy.images import (
    Preprocessing,
    labelled_images,
    load_images,
    split_held_out,
)
from edgeport.fileio import (
    OutputPlan,
    atomic_write_json,
    path_size,
    remove_path,
    sha256_path,
)
from edgeport.runtimes import open_runner
from edgeport.sources.base import ModelHandle, TensorSpec
from edgeport.validation import Comparison, Gate, compare

log = logging.getLogger(__name__)

ONNX_FORMATS = ("onnx", "onnx_fp16", "onnx_int8", "onnx_int8_static")
DEFAULT_FORMATS = ONNX_FORMATS
HEADS_DIR = "disease-heads"
FUSED_NAME = "disease-heads-fused"
HEADS_LIST = "disease-heads-list.json"
METADATA = "onnx-metadata.json"
SEED_FLOAT_GATE = 0.01  # seed 002: float ONNX species model within 0.01 max abs diff of PyTorch
TASK_DROP_GATE = 0.01  # seed 002: INT8 accuracy within 1 point of float
MAX_REFERENCE = 256
NEEDS_DATA = ("--family hierarchy needs --data-path-train IMAGES/ (calibration, held-out validation, the OOD "
              "detector's training embeddings)")
N_OTHER_IMAGES = 64


@dataclass(frozen=True)
class HierarchyConfig:
    formats: tuple[str, ...] = DEFAULT_FORMATS
    outdir: Path = Path("exports")
    data_path_train: Path | None = None
    name: str = "species"
    force: bool = False
    tol: float = 1e-4
    held_out_every: int = 5
    ood_percentile: float = 95.0
    ood_estimator: str = "ledoit_wolf"
    preprocessing: Preprocessing | None = None
    gate_overrides: dict = field(default_factory=dict)
    options: ExportOptions = field(default_factory=ExportOptions)
    latency_repeats: int = 20
    command_line: str = ""


def resolve_formats(names) -> list[FormatSpec]:
    if "all" in names:
        return [FORMATS.get(n) for n in ONNX_FORMATS]
    bad = [n for n in names if n not in ONNX_FORMATS]
    if bad:
        raise UnsupportedFormatError(f"the hierarchy family's deliverables are ONNX only; {bad} do not apply "
                                     f"(choose from {list(ONNX_FORMATS)} or all)")
    return [FORMATS.get(n) for n in dict.fromkeys(names)]


def plan_deliverables(outdir: Path, name: str, specs, force: bool) -> OutputPlan:
    """Every output of the deliverables folder (``fileio.OutputPlan``), checked before any work: the species and
    fused models (and their ``.failed`` names) per precision, ``disease-heads/`` (one folder output, replaced as
    a whole), the lists, the OOD detector and the reports."""
    from edgeport.families.hierarchy import ood

    plan = OutputPlan(force=force, what="earlier exports", hint="pass --force to replace them or choose another --outdir")
    for f in specs:
        for stem in (name, FUSED_NAME):
            plan.add(outdir / f.artifact_name(stem))
            plan.add(outdir / f.failed_name(stem))
    for n in (HEADS_DIR, HEADS_LIST, ood.NPZ, ood.JSON, ood.ONNX, METADATA, "manifest.json", "validation.json",
              "report.html"):
        plan.add(outdir / n)
    plan.check()
    return plan


def _torch_route(model) -> str:
    """transformers' Swin exports with a dynamic batch only through the TorchScript-based exporter."""
    return "torchscript" if any(type(m).__module__.startswith("transformers") for m in model.modules()) else "dynamo"


# ----------------------------------------------------------------------------------------------- one artifact


def _export_and_judge(handle: ModelHandle, fmt: FormatSpec, options: ExportOptions, final: Path, failed_path: Path,
                      feeds: dict, judge, work_in: Path) -> tuple[ArtifactResult, dict | None]:
    """Export ``handle`` in ``fmt`` to ``final`` (a staged name), run it on ``feeds``, ``judge(outputs, failed_mask)``
    -> Comparison; a failed artifact is renamed to ``failed_path`` (staged too). Scratch files go in a folder
    inside ``work_in`` (the staging area). Errors are caught per artifact: nothing is left staged for it."""
    res = ArtifactResult(format=fmt.name, status="error")
    work = Path(tempfile.mkdtemp(prefix=f".edgeport-{fmt.name}-", dir=work_in))
    got = None
    try:
        t0 = time.perf_counter()
        res.notes = dict(get_exporter(fmt)(handle, fmt=fmt, path=final, options=replace(options, work_dir=work)) or {})
        res.export_seconds = round(time.perf_counter() - t0, 3)
        t0 = time.perf_counter()
        runner = open_runner(fmt.runtime, final)
        res.io_dtypes = runner.io_dtypes()
        got, failed = runner.run(feeds)
        del runner
        res.comparison = judge(got, failed)
        res.validate_seconds = round(time.perf_counter() - t0, 3)
        res.status = "passed" if res.comparison.passed else "failed"
        dest = final if res.passed else failed_path
        if dest != final:
            os.replace(final, dest)
        res.path, res.size_bytes, res.sha256 = dest, path_size(dest), sha256_path(dest)
    except EdgeportError as e:
        res.status, res.error = "error", str(e)
    except Exception as e:  # noqa: BLE001 - one artifact failing must not stop the others; reported in full
        res.status, res.error = "error", f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"
        res.notes["traceback"] = traceback.format_exc(limit=8)
    finally:
        if res.path is None:
            remove_path(final)
            remove_path(failed_path)
        shutil.rmtree(work, ignore_errors=True)
    return res, got


def merge(comparisons: list[Comparison], gate: Gate) -> Comparison:
    """Several comparator results (one per output or per species) as one."""
    out = Comparison(gate=gate, outputs={}, failed_rows=0, total_rows=0)
    for c in comparisons:
        out.outputs.update(c.outputs)
        out.checks += c.checks
        out.problems += c.problems
        out.not_judged += c.not_judged
        out.failed_rows += c.failed_rows
        out.total_rows += c.total_rows
    return out


def head_gate(gate: Gate, n_diseases: int) -> Gate:
    """The gate of a head with ``n_diseases`` outputs. A one-disease head has no row-wise cosine or top-1 worth
    the name: the cosine of a single logit is only its sign, and that logit is never trained (cross-entropy over
    one class has no gradient; its softmax is always 1). It is judged by Pearson r across rows at the cosine
    bound instead (INT8 rounding flips the sign of near-zero logits: row "cosine" -1, no prediction changed)."""
    if n_diseases > 1 or gate.min_cosine is None:
        return gate
    return replace(gate, min_cosine=None, min_top1=None, min_pearson=max(gate.min_pearson or 0.0, gate.min_cosine))


# ----------------------------------------------------------------------------------------------- pipeline


@dataclass
class HierarchyResult:
    outdir: Path
    artifacts: list[ArtifactResult]
    verification: dict
    files: dict = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return all(a.passed for a in self.artifacts) and bool(self.verification.get("passed"))

    @property
    def exit_code(self) -> int:
        return 0 if self.passed else 1


def export_deliverables(src: HierarchySource, cfg: HierarchyConfig) -> HierarchyResult:
    """Write and validate the deliverables folder for ``src`` (see the module docstring) by the write rule
    (``docs/reliability.md``): every output is planned and checked before work, written in the folder's staging
    area and moved into place together at the end; an interrupted or failed run leaves the earlier set whole."""
    specs = resolve_formats(cfg.formats)
    if cfg.data_path_train is None:
        raise ConfigError(NEEDS_DATA)
    pre = cfg.preprocessing or Preprocessing(size=src.image_size)
    if pre.size != src.image_size:
        pre = replace(pre, size=src.image_size)
    outdir = Path(cfg.outdir)
    if outdir.exists() and not outdir.is_dir():
        raise ConfigError(f"--outdir {outdir} is a file; choose a directory")
    with plan_deliverables(outdir, cfg.name, specs, cfg.force) as plan:
        result = _export_planned(src, cfg, specs, pre, plan, outdir)
        plan.commit(prune=True)  # a format whose new artifact failed loses its earlier passing one
    return result


def _export_planned(src: HierarchySource, cfg: HierarchyConfig, specs, pre: Preprocessing, plan: OutputPlan,
                    final_dir: Path) -> HierarchyResult:
    """The export, written into the staging area of ``plan`` (a folder laid out as the deliverables folder);
    the result's paths name the final files."""
    import torch

    from edgeport.families.hierarchy import ood as ood_mod
    from edgeport.families.hierarchy.graphs import PAD_LOGIT, fused_graph, head_graph
    from edgeport.families.hierarchy.wrapper import SpeciesModel

    outdir = plan.staged(final_dir / "manifest.json").parent  # every top-level output is staged here
    items = labelled_images(Path(cfg.data_path_train), src.class_names, src.disease_names)
    train, held = split_held_out(items, cfg.held_out_every)
    if len(held) < 2 or len(train) < 2:
        raise ConfigError(f"--data-path-train {cfg.data_path_train} holds {len(items)} images; at least "
                          f"{2 * cfg.held_out_every} are needed (every {cfg.held_out_every}th is held out)")
    held = held[:MAX_REFERENCE]
    x_train = load_images([i.path for i in train], pre)
    x_held = load_images([i.path for i in held], pre)

    model = src.model.eval()
    with torch.no_grad():
        ref_logits, ref_emb = (t.numpy() for t in model(torch.from_numpy(x_held)))
        emb_train = np.concatenate([model(torch.from_numpy(x_train[i:i + 64]))[1].numpy()
                                    for i in range(0, len(x_train), 64)])
    names, dim = src.class_names, src.embedding_dim
    heads_np = [(src.heads[s].weight.detach().numpy().astype(np.float32),
                 src.heads[s].bias.detach().numpy().astype(np.float32)) for s in names]
    with torch.no_grad():
        ref_heads = {s: src.heads[s](torch.from_numpy(ref_emb)).numpy() for s in names}

    options = replace(cfg.options, tol=cfg.tol, torch_onnx_route=_torch_route(model))
    size = src.image_size
    species = ModelHandle(
        name=cfg.name, framework="torch", model=SpeciesModel(model, size),
        inputs=(TensorSpec("input", (None, 3, size, size)),),
        outputs=(TensorSpec("species_logits", (None, len(names))), TensorSpec("embedding", (None, dim))),
        family="hierarchy", source_path=src.path, config=src.config,
        reference_inputs=lambda n, seed: {"input": x_held[:n]},
        calibration_inputs=lambda n, seed: {"input": x_train[:n]},
    )
    heads_tmp = plan.staged(final_dir / HEADS_DIR)
    heads_tmp.mkdir()
    artifacts: list[ArtifactResult] = []
    per_precision: dict[str, dict] = {}
    calib_idx = np.array([names.index(i.species) if i.species else 0 for i in train], np.int64)
    n_held, n_sp = len(ref_emb), len(names)
    fused_feeds = {"embedding": np.repeat(ref_emb, n_sp, axis=0),
                   "species_index": np.tile(np.arange(n_sp, dtype=np.int64), n_held)}
    for fmt in specs:
        gate = gate_for(fmt.name, tol=cfg.tol, overrides=cfg.gate_overrides)
        emb_gate = replace(gate, min_top1=None)  # the argmax of an embedding means nothing

        def judge_species(got, failed, gate=gate, emb_gate=emb_gate):
            return merge([compare({"species_logits": ref_logits}, got, gate, failed=failed),
                          compare({"embedding": ref_emb}, got, emb_gate, failed=failed)], gate)

        log.info("species model %s ...", fmt.name)
        res, sp_out = _export_and_judge(species, fmt, options, outdir / fmt.artifact_name(cfg.name),
                                        outdir / fmt.failed_name(cfg.name), {"input": x_held}, judge_species,
                                        outdir)
        res.format = f"species/{fmt.name}"
        artifacts.append(res)

        # one file per head, judged on the PyTorch head's output for the real held-out embeddings
        log.info("%d disease heads %s ...", n_sp, fmt.name)
        head_results, head_outs, head_cmps = {}, {}, []
        for s, (w, b) in zip(names, heads_np, strict=True):
            stem = src.head_files[s]
            h = ModelHandle(
                name=stem, framework="onnx", model=head_graph(w, b, opset=options.opset),
                inputs=(TensorSpec("embedding", (None, dim)),), outputs=(TensorSpec("disease_logits", (None, w.shape[0])),),
                reference_inputs=lambda n, seed: {"embedding": ref_emb[:n]},
                calibration_inputs=lambda n, seed: {"embedding": emb_train[:n]},
            )
            key = f"{s}.disease_logits"
            r, out = _export_and_judge(
                h, fmt, options, heads_tmp / fmt.artifact_name(stem), heads_tmp / fmt.failed_name(stem),
                {"embedding": ref_emb},
                lambda got, failed, key=key, s=s, gate=head_gate(gate, w.shape[0]): compare(  # noqa: B008
                    {key: ref_heads[s]}, {key: got["disease_logits"]}, gate, failed=failed), outdir)
            head_results[s] = r
            head_outs[s] = out
            if r.comparison is not None:
                head_cmps.append(r.comparison)
        heads_res = ArtifactResult(
            format=f"{HEADS_DIR}/{fmt.name}",
            status="passed" if all(r.passed for r in head_results.values()) else
            ("failed" if all(r.comparison is not None for r in head_results.values()) else "error"),
            size_bytes=sum(r.size_bytes or 0 for r in head_results.values()),
            comparison=merge(head_cmps, gate) if head_cmps else None,
            error="; ".join(f"{s}: {r.error}" for s, r in head_results.items() if r.error)[:500] or None,
            notes={"heads": {s: {"file": f"{HEADS_DIR}/{r.path.name}" if r.path else None, "status": r.status,
                                 "size_bytes": r.size_bytes, "sha256": r.sha256, "error": r.error}
                             for s, r in head_results.items()}},
        )
        artifacts.append(heads_res)

        # the fused model: every held-out embedding with every species index
        fused = ModelHandle(
            name=FUSED_NAME, framework="onnx", model=fused_graph(heads_np, opset=options.opset),
            inputs=(TensorSpec("embedding", (None, dim)), TensorSpec("species_index", (None,), "int64")),
            outputs=(TensorSpec("disease_logits", (None, max(w.shape[0] for w, _ in heads_np))),
                     TensorSpec("valid_count", (None,), "int64")),
            reference_inputs=lambda n, seed: {k: v[:n] for k, v in fused_feeds.items()},
            calibration_inputs=lambda n, seed: {"embedding": emb_train[:n], "species_index": calib_idx[:n]},
        )

        def judge_fused(got, failed, gate=gate, head_outs=head_outs):
            return _judge_fused(got, failed, gate, names, ref_heads, head_outs, n_held, PAD_LOGIT)

        log.info("fused head model %s ...", fmt.name)
        fres, fout = _export_and_judge(fused, fmt, options, outdir / fmt.artifact_name(FUSED_NAME),
                                       outdir / fmt.failed_name(FUSED_NAME), fused_feeds, judge_fused,
                                       outdir)
        fres.format = f"fused/{fmt.name}"
        artifacts.append(fres)
        per_precision[fmt.name] = {"species": res, "heads": head_results, "fused": fres, "species_out": sp_out,
                                   "fused_out": fout}

    # OOD detector from the float model's training embeddings
    det = ood_mod.fit_ood(emb_train, percentile=cfg.ood_percentile, estimator=cfg.ood_estimator)
    ood_files = det.save(outdir, opset=options.opset, extra={"fitted_on": f"{len(emb_train)} training images of "
                                                                          f"{cfg.data_path_train}"})
    verification = _verify(src, cfg, pre, det, outdir, held, ref_logits, ref_emb, per_precision, x_held)
    files = _write_lists(src, cfg, pre, specs, outdir, per_precision, ood_files, options, det)
    result = HierarchyResult(outdir=outdir, artifacts=artifacts, verification=verification, files=files)
    _write_reports(result, src, cfg, options)
    # the staged paths -> their final names (the plan moves them there together)
    final = (lambda q: final_dir / Path(q).relative_to(outdir) if q is not None else None)
    for a in artifacts:
        a.path = final(a.path)
    for p in per_precision.values():
        for r in p["heads"].values():
            r.path = final(r.path)
    result.outdir, result.files = final_dir, {k: final(v) for k, v in result.files.items()}
    return result


def _judge_fused(got, failed, gate, names, ref_heads, head_outs, n_held, pad) -> Comparison:
    """Per species, on its valid slots: the fused output against the PyTorch head and against the per-head file
    of the same precision; padded slots must hold ``pad`` and ``valid_count`` the species' disease count."""
    n_sp = len(names)
    logits = got["disease_logits"].reshape(n_held, n_sp, -1)
    counts = got["valid_count"].reshape(n_held, n_sp)
    fmask = np.asarray(failed).reshape(n_held, n_sp)
    cmps: list[Comparison] = []
    problems = []
    for j, s in enumerate(names):
        k = ref_heads[s].shape[1]
        rows = logits[:, j, :]
        g = head_gate(gate, k)
        cmps.append(compare({f"fused.{s}.disease_logits": ref_heads[s]}, {f"fused.{s}.disease_logits": rows[:, :k]},
                            g, failed=fmask[:, j]))
        if head_outs.get(s) is not None:  # fused == per-head, judged by the same gate
            cmps.append(compare({f"fused_vs_head.{s}.disease_logits": head_outs[s]["disease_logits"]},
                                {f"fused_vs_head.{s}.disease_logits": rows[:, :k]}, g, failed=fmask[:, j]))
        ok = ~fmask[:, j]
        if not np.all(rows[ok, k:] == pad):
            problems.append(f"species '{s}': padded slots are not {pad:g}")
        if not np.all(counts[ok, j] == k):
            problems.append(f"species '{s}': valid_count is {sorted(set(counts[ok, j].tolist()))}, expected {k}")
    out = merge(cmps, gate)
    out.problems += problems
    return out


# ----------------------------------------------------------------------------------------------- verification


def _other_embeddings(model, pre: Preprocessing, n: int) -> np.ndarray:
    import torch

    from edgeport.families.hierarchy.synthetic import other_image

    rng = np.random.default_rng(12345)
    x = np.stack([pre.normalise(other_image(k, pre.size, rng)) for k in range(n)]).astype(np.float32)
    with torch.no_grad():
        return model(torch.from_numpy(x))[1].numpy()


def _routed_accuracy(sp_logits: np.ndarray, dz_logits_fn, true_sp: np.ndarray, true_dz: np.ndarray) -> dict:
    pred_sp = np.argmax(sp_logits, axis=1)
    dz = dz_logits_fn(pred_sp)
    pred_dz = np.argmax(dz, axis=1)
    return {"species_top1": float(np.mean(pred_sp == true_sp)),
            "disease_top1": float(np.mean((pred_sp == true_sp) & (pred_dz == true_dz)))}


def _verify(src, cfg, pre, det, outdir, held, ref_logits, ref_emb, per_precision, x_held) -> dict:
    """The seed's verification list, measured."""
    import torch

    from edgeport.families.hierarchy import ood as ood_mod

    names = src.class_names
    labelled = [i for i, it in enumerate(held) if it.species is not None and it.disease is not None]
    v: dict = {"held_out_images": len(held), "labelled_held_out": len(labelled)}
    checks = []

    fp32 = per_precision.get("onnx")
    if fp32 and fp32["species"].comparison is not None:
        md = fp32["species"].comparison.outputs["species_logits"].max_abs_diff
        v["float_vs_pytorch_max_abs_diff"] = md
        checks.append({"check": "float species model vs PyTorch max abs diff", "value": md, "gate": SEED_FLOAT_GATE,
                       "passed": md <= SEED_FLOAT_GATE})

    # task accuracy: PyTorch float vs each artifact, disease on the head routed by the predicted species
    if labelled:
        idx = np.array(labelled)
        true_sp = np.array([names.index(held[i].species) for i in idx])
        true_dz = np.array([src.disease_names[held[i].species].index(held[i].disease) for i in idx])
        kmax = max(len(d) for d in src.disease_names.values())

        def torch_routed(pred_sp):
            out = np.full((len(idx), kmax), -np.inf, np.float32)
            with torch.no_grad():
                for r, (row, s) in enumerate(zip(idx, pred_sp, strict=True)):
                    out[r, :len(src.disease_names[names[s]])] = src.heads[names[s]](
                        torch.from_numpy(ref_emb[row:row + 1])).numpy()[0]
            return out

        acc = {"pytorch": _routed_accuracy(ref_logits[idx], torch_routed, true_sp, true_dz)}
        for fname, p in per_precision.items():
            if p["species_out"] is None or not p["fused"].passed:
                continue
            fused_runner = open_runner("onnxruntime", p["fused"].path)
            emb = p["species_out"]["embedding"][idx]

            def art_routed(pred_sp, fused_runner=fused_runner, emb=emb):
                return fused_runner.infer({"embedding": emb, "species_index": pred_sp.astype(np.int64)})["disease_logits"]

            acc[fname] = _routed_accuracy(p["species_out"]["species_logits"][idx], art_routed, true_sp, true_dz)
            if fname != "onnx":
                for task in ("species_top1", "disease_top1"):
                    drop = acc["pytorch"][task] - acc[fname][task]
                    checks.append({"check": f"{fname} {task} drop vs float", "value": drop, "gate": TASK_DROP_GATE,
                                   "passed": drop <= TASK_DROP_GATE})
        v["task_accuracy"] = acc
    else:
        v["task_accuracy"] = None
        v["task_accuracy_note"] = "held-out images carry no <species>/<disease>/ folder labels: not measured"

    # every head exported, per precision
    v["heads_exported"] = {f: {"passed": sum(r.passed for r in p["heads"].values()), "of": len(names)}
                           for f, p in per_precision.items()}
    for f, h in v["heads_exported"].items():
        checks.append({"check": f"{f} disease heads exported and passed", "value": h["passed"], "gate": h["of"],
                       "passed": h["passed"] == h["of"]})

    # OOD: ONNX vs numpy, rejection of images of another kind
    other = _other_embeddings(src.model, pre, N_OTHER_IMAGES)
    v["ood_onnx_vs_numpy"] = ood_mod.check_onnx(outdir, det, np.concatenate([ref_emb, other]))
    checks.append({"check": "ood-detector.onnx distance vs numpy (max relative diff)",
                   "value": v["ood_onnx_vs_numpy"]["max_rel_diff"], "gate": ood_mod.ONNX_REL_TOL,
                   "passed": v["ood_onnx_vs_numpy"]["passed"]})
    v["ood_rejection"] = ood_mod.rejection_scores(det, ref_emb, other) | {
        "threshold": det.threshold, "percentile": det.percentile,
        "others_are": "synthetic flat colours, gradients, noise and text"}

    # sizes against the parameter-bytes bound, latency of species + routed disease at batch 1
    n_params = sum(int(p.numel()) for p in src.model.parameters())
    n_species_params = n_params - sum(int(h.weight.numel() + h.bias.numel()) for h in src.heads.values())
    bytes_per = {"fp32": 4, "fp16": 2, "int8_dynamic": 1, "int8_static": 1}
    v["sizes"], v["latency_batch1"] = {}, {}
    for fname, p in per_precision.items():
        fmt = FORMATS.get(fname)
        sp, fu = p["species"], p["fused"]
        v["sizes"][fname] = {
            "species_bytes": sp.size_bytes, "species_parameter_bytes": n_species_params * bytes_per[fmt.precision],
            "fused_bytes": fu.size_bytes,
            "largest_head_bytes": max((r.size_bytes or 0) for r in p["heads"].values()),
            "heads_total_bytes": sum((r.size_bytes or 0) for r in p["heads"].values()),
        }
        if sp.passed and fu.passed:
            v["latency_batch1"][fname] = species_disease_latency(sp.path, fu.path, x_held[:1], cfg.latency_repeats)
    v["parameters"] = {"total": n_params, "species_model": n_species_params}
    v["checks"] = checks
    v["passed"] = all(c["passed"] for c in checks)
    return v


def species_disease_latency(species_path: Path, fused_path: Path, x1: np.ndarray, repeats: int = 20) -> dict:
    """Wall-clock ms of species model + fused head (routed by the predicted species) on one image."""
    sp = open_runner("onnxruntime", species_path)
    fu = open_runner("onnxruntime", fused_path)

    def once():
        out = sp.infer({"input": x1})
        idx = np.argmax(out["species_logits"], axis=1).astype(np.int64)
        fu.infer({"embedding": out["embedding"], "species_index": idx})

    for _ in range(3):
        once()
    t = []
    for _ in range(int(repeats)):
        t0 = time.perf_counter()
        once()
        t.append(time.perf_counter() - t0)
    return {"p50_ms": round(float(np.percentile(t, 50)) * 1e3, 3), "p90_ms": round(float(np.percentile(t, 90)) * 1e3, 3),
            "repeats": int(repeats)}


# ----------------------------------------------------------------------------------------------- files


def _io(path: Path) -> dict:
    r = open_runner("onnxruntime", path)
    return {"inputs": [t.to_dict() for t in r.inputs],
            "outputs": [{"name": n, "dtype": r.output_dtypes[n]} for n in r.output_names]}


def _write_lists(src, cfg, pre, specs, outdir, per_precision, ood_files, options, det) -> dict:
    from edgeport.families.hierarchy.graphs import PAD_LOGIT
    from edgeport.reporting.versions import package_versions

    names = src.class_names
    species_list = []
    for i, s in enumerate(names):
        files = {f: f"{HEADS_DIR}/{p['heads'][s].path.name}" for f, p in per_precision.items()
                 if p["heads"][s].passed}
        species_list.append({"id": i, "name": s, "diseases": src.disease_names[s],
                             "n_diseases": len(src.disease_names[s]), "head_files": files})
    heads_list = {
        "order": "species id = index in the training class order (class_names)",
        "embedding_dim": src.embedding_dim,
        "max_diseases": max(len(d) for d in src.disease_names.values()),
        "fused_files": {f: p["fused"].path.name for f, p in per_precision.items() if p["fused"].passed},
        "padding_logit": PAD_LOGIT,
        "species": species_list,
    }
    atomic_write_json(outdir / HEADS_LIST, heads_list)
    models = {}
    for f, p in per_precision.items():
        for role in ("species", "fused"):
            r = p[role]
            if r.passed:
                models[r.path.name] = {"role": role, "format": f, **_io(r.path)}
    first_head = next((r.path for p in per_precision.values() for r in p["heads"].values() if r.passed), None)
    every = sorted(q for q in outdir.rglob("*") if q.is_file()
                   and not any(part.startswith(".") for part in q.relative_to(outdir).parts)
                   and q.name not in (METADATA, "manifest.json", "validation.json", "report.html"))
    meta = {
        "species_model": {"input": {"name": "input", "shape": ["batch", 3, src.image_size, src.image_size],
                                    "dtype": "float32", "layout": "NCHW"},
                          "outputs": [{"name": "species_logits", "shape": ["batch", len(names)], "dtype": "float32"},
                                      {"name": "embedding", "shape": ["batch", src.embedding_dim], "dtype": "float32"}]},
        "disease_head": _io(first_head) if first_head else None,
        "models": models,
        "preprocessing": pre.to_dict(),
        "class_names": names,
        "ood_detector": {"onnx": ood_files["onnx"].name, "json": ood_files["json"].name, "npz": ood_files["npz"].name,
                         "threshold": det.threshold, "embedding_dim": det.dim},
        "opset": options.opset,
        "torch_onnx_route": options.torch_onnx_route,
        "versions": package_versions(("torch", "onnxscript", "onnx", "onnxruntime", "onnxconverter-common")),
        "sha256": {str(q.relative_to(outdir)): sha256_path(q) for q in every},
    }
    atomic_write_json(outdir / METADATA, meta)
    return {"heads_list": outdir / HEADS_LIST, "metadata": outdir / METADATA, **ood_files}


def _write_reports(result: HierarchyResult, src: HierarchySource, cfg: HierarchyConfig, options) -> None:
    from edgeport import __version__
    from edgeport.fileio import atomic_write_text
    from edgeport.reporting.folder import REPORT, render_folder_report
    from edgeport.reporting.manifest import framework_versions

    out = result.outdir
    validation = {
        "all_passed": result.passed,
        "artifacts": {a.format: {"status": a.status, "error": a.error,
                                 **(a.comparison.to_dict() if a.comparison is not None else {})}
                      for a in result.artifacts},
        "verification": result.verification,
    }
    atomic_write_json(out / "validation.json", validation)
    manifest = {
        "edgeport_version": __version__,
        "command_line": cfg.command_line,
        "source": {"path": str(src.path) if src.path else None,
                   "sha256": sha256_path(src.path) if src.path else None, "framework": "torch",
                   "family": "hierarchy", "checkpoint_kind": src.kind, "model_config": src.config},
        "model_name": cfg.name,
        "inputs": [{"name": "input", "shape": [None, 3, src.image_size, src.image_size], "dtype": "float32"}],
        "outputs": [{"name": "species_logits", "shape": [None, len(src.class_names)], "dtype": "float32"},
                    {"name": "embedding", "shape": [None, src.embedding_dim], "dtype": "float32"}],
        "labels": {"count": len(src.class_names), "file": HEADS_LIST},
        "data_path_train": str(cfg.data_path_train),
        "options": options.to_dict() | {"tol": cfg.tol},
        "artifacts": [a.to_dict(out) for a in result.artifacts],
        "files": {k: str(Path(v).relative_to(out)) for k, v in result.files.items()},
        "metadata_sha256": sha256_path(out / METADATA),
        "all_passed": result.passed,
        "versions": framework_versions(),
    }
    atomic_write_json(out / "manifest.json", manifest)
    atomic_write_text(out / REPORT, render_folder_report([out]))
    result.files.update({"manifest": out / "manifest.json", "validation": out / "validation.json"})


def verification_table(v: dict) -> str:
    """The seed's verification as printed lines."""
    from edgeport.reporting.table import columns

    rows = [(c["check"], f"{c['value']:.4g}" if isinstance(c["value"], float) else str(c["value"]),
             f"{c['gate']:g}", "PASS" if c["passed"] else "FAIL") for c in v["checks"]]
    lines = columns(("verification", "value", "gate", "result"), rows)
    if v.get("task_accuracy"):
        lines.append("")
        lines += columns(("model", "species top-1", "disease top-1 (routed)"),
                         [(k, f"{a['species_top1']:.3f}", f"{a['disease_top1']:.3f}") for k, a in v["task_accuracy"].items()])
    r = v["ood_rejection"]
    prec = "-" if r["precision"] is None else f"{r['precision']:.3f}"
    lines.append(f"\nOOD rejection of non-plant images: precision {prec}, recall {r['recall']:.3f} "
                 f"(threshold {r['threshold']:.4g} = {r['percentile']:g}th percentile)")
    for f, lat in v["latency_batch1"].items():
        lines.append(f"species + routed disease, batch 1, {f}: p50 {lat['p50_ms']:.2f} ms")
    return "\n".join(lines)


def refit_ood(model_dir: Path, *, images: Path | None = None, embeddings: Path | None = None, percentile: float = 95.0,
              estimator: str = "ledoit_wolf"):
    """``edgeport ood fit``: a new detector for a deliverables folder, from images (embedded by the folder's FP32
    species model) or an ``.npy`` of embeddings; the metadata's sha256 entries are updated. The folder's detector
    is refitted in place (no ``--force``: replacing it is the command's job), as one staged set."""
    import json

    from edgeport.errors import SourceError
    from edgeport.families.hierarchy import ood as ood_mod
    from edgeport.families.hierarchy.images import (
        Preprocessing,
        list_images,
        load_images,
    )
    from edgeport.runtimes.onnxruntime import OrtRunner

    model_dir = Path(model_dir)
    meta_path = model_dir / METADATA
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        dim = int(json.loads((model_dir / HEADS_LIST).read_text(encoding="utf-8"))["embedding_dim"])
    except (FileNotFoundError, ValueError, KeyError) as e:
        raise SourceError(f"--model-dir {model_dir} is not a folder written by export --family hierarchy ({e})") from None
    if embeddings is not None:
        try:
            emb = np.load(embeddings, allow_pickle=False)
        except (OSError, ValueError) as e:
            raise SourceError(f"--embeddings {embeddings} is not a readable .npy file ({e})") from None
        if emb.ndim != 2 or emb.shape[1] != dim:
            raise ConfigError(f"--embeddings {embeddings} has shape {emb.shape}; this model's embeddings are (N, {dim})")
    else:
        fp32 = next((n for n, m in meta.get("models", {}).items() if m["role"] == "species" and m["format"] == "onnx"), None)
        if fp32 is None:
            raise SourceError(f"{model_dir} has no FP32 species model (species.onnx) to embed images with; "
                              "pass --embeddings X.npy")
        pre = Preprocessing.from_dict(meta["preprocessing"])
        runner = OrtRunner.open(model_dir / fp32)
        files = list_images(images, what="--images")
        emb = np.concatenate([runner.infer({"input": load_images(files[i:i + 32], pre)})["embedding"]
                              for i in range(0, len(files), 32)])
    det = ood_mod.fit_ood(emb, percentile=percentile, estimator=estimator)
    # refit in place: the detector's three files, the metadata (their sha256) and the manifest (the metadata's
    # sha256) are replaced as one set by the write rule (staged, moved into place together; links replaced)
    manifest_path = model_dir / "manifest.json"
    plan = OutputPlan(force=True)
    for name in (*ood_mod.FILES, METADATA, *(["manifest.json"] if manifest_path.is_file() else [])):
        plan.add(model_dir / name)
    plan.check()
    with plan:
        stage = plan.staged(meta_path).parent
        det.save(stage, opset=int(meta.get("opset", 18)), extra={"fitted_on": str(images or embeddings)})
        check = ood_mod.check_onnx(stage, det, emb)
        meta["ood_detector"].update({"threshold": det.threshold, "embedding_dim": det.dim})
        for name in ood_mod.FILES:
            meta["sha256"][name] = sha256_path(stage / name)
        atomic_write_json(stage / METADATA, meta)
        if manifest_path.is_file():
            try:
                manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
            except ValueError as e:
                raise SourceError(f"{manifest_path} is not valid JSON ({e})") from None
            manifest["metadata_sha256"] = sha256_path(stage / METADATA)
            atomic_write_json(stage / "manifest.json", manifest)
        plan.commit()
    return det, check
