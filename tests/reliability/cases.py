"""The table of reliability cases: bad files, bad flags, earlier outputs, full / read-only folders and
interrupts, each with the exit code, the one line it must print and what the folder holds afterwards.

``test_cases.py`` runs every row in process (``edgeport.cli.main.main``); ``test_signals.py`` runs the
``SIGNAL_CASES`` in a subprocess that sends itself SIGINT or SIGKILL at a named point of the work.
docs/reliability.md shows this table.
"""

from __future__ import annotations

import errno
import json
import os
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

KINDS = ("bad file", "bad flag", "earlier outputs", "full or read-only folder", "interrupt")

#: the files of ``edgeport export --formats onnx`` of the geo checkpoint (docs/export.md)
ONNX_SET = frozenset({"geomodel.onnx", "geomodel_onnx_validation_data.npz", "geomodel_reference_validation_data.npz",
                      "labels.txt", "MODEL_LICENSE.txt", "manifest.json", "validation.json", "report.html"})
#: the files of a finished ``edgeport train --checkpoint-path m.keras``
TRAIN_SET = frozenset({"m.keras", "m_model_config.json", "m_labels.txt", "m_history.csv", "m_curves.png",
                       "m_train_state.json"})
#: tiny DS-CNN options: an epoch of the reliability audio folder takes about a second
TINY_TRAIN = ("--sample-rate", "16000", "--chunk-duration", "0.5", "--spec-width", "32", "--fft-length", "256",
              "--num-mels", "16", "--alpha", "0.25", "--embeddings-size", "16", "--batch-size", "8",
              "--num-workers", "0", "--no-progress", "--max-chunks-per-file", "2", "--dropout", "0.1", "--no-se",
              "--no-inverted-residual")


@dataclass
class Ctx:
    """Paths a case works with; ``src`` is a private copy of the geo checkpoint, ``data`` of the audio folder."""

    tmp: Path
    src: Path | None = None
    data: Path | None = None

    @property
    def out(self) -> Path:
        return self.tmp / "out"

    def fmt(self, s: str) -> str:
        return s.format(tmp=self.tmp, out=self.out, src=self.src, data=self.data,
                        srcdir=self.src.parent if self.src else "")


@dataclass(frozen=True)
class Case:
    id: str
    kind: str
    argv: tuple[str, ...]
    message: str                       # regex the one stderr line must match
    code: int = 2
    needs: str = ""                    # "geo": a copy of the geo checkpoint; "audio": of the audio folder
    setup: Callable[[Ctx], None] | None = None
    patch: Callable[[Ctx, object], None] | None = None  # (ctx, monkeypatch)
    leaves: str = "unchanged"          # "unchanged": every file under tmp as before; "outputs": see below
    outputs: frozenset[str] = frozenset()  # "outputs": the names in ``outdir`` (the rest of tmp as before)
    outdir: str = "{out}"
    check: Callable[[Ctx], None] | None = None
    what_is_left: str = ""             # for docs/reliability.md; default from ``leaves``
    slow: bool = False

    def __post_init__(self):
        assert self.kind in KINDS, self.kind


# ----------------------------------------------------------------------------------------- setups


def _write(rel: str, data: bytes | str) -> Callable[[Ctx], None]:
    def setup(ctx: Ctx) -> None:
        p = Path(ctx.fmt(rel))
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data if isinstance(data, bytes) else data.encode())
    return setup


def _all(*setups: Callable[[Ctx], None]) -> Callable[[Ctx], None]:
    def setup(ctx: Ctx) -> None:
        for s in setups:
            s(ctx)
    return setup


def _npz(rel: str, **arrays) -> Callable[[Ctx], None]:
    def setup(ctx: Ctx) -> None:
        p = Path(ctx.fmt(rel))
        p.parent.mkdir(parents=True, exist_ok=True)
        np.savez(p, **arrays)
    return setup


def _object_npz(ctx: Ctx) -> None:
    np.savez(ctx.tmp / "obj.npz", lat=np.array([{"a": 1}, None], dtype=object))


def _truncated_checkpoint(ctx: Ctx) -> None:
    data = ctx.src.read_bytes()
    ctx.src.write_bytes(data[: len(data) // 2])


def _zip_of_junk(rel: str, member: str = "junk/data.pkl") -> Callable[[Ctx], None]:
    def setup(ctx: Ctx) -> None:
        p = Path(ctx.fmt(rel))
        with zipfile.ZipFile(p, "w") as z:
            z.writestr(member, os.urandom(256))
    return setup


def _labels(text: bytes) -> Callable[[Ctx], None]:
    def setup(ctx: Ctx) -> None:
        (ctx.src.parent / "labels.txt").write_bytes(text)
    return setup


def _five_labels(ctx: Ctx) -> None:
    rows = (ctx.src.parent / "labels.txt").read_text().splitlines()[:5]
    (ctx.src.parent / "labels.txt").write_text("\n".join(rows) + "\n")


def _earlier_export_files(ctx: Ctx) -> None:
    ctx.out.mkdir(parents=True, exist_ok=True)
    for n in ("geomodel.onnx", "manifest.json", "validation.json"):
        (ctx.out / n).write_text(f"an earlier {n}")


def _licence_symlink(ctx: Ctx) -> None:
    ctx.out.mkdir(parents=True, exist_ok=True)
    (ctx.tmp / "outside.txt").write_text("a file outside the output folder")
    (ctx.out / "MODEL_LICENSE.txt").symlink_to(ctx.tmp / "outside.txt")


def _users_labels(ctx: Ctx) -> None:
    ctx.out.mkdir(parents=True, exist_ok=True)
    (ctx.out / "labels.txt").write_text("my own labels\n")


def _stale_staging(ctx: Ctx) -> None:
    """What a SIGKILLed run leaves: a staging folder of a process that no longer exists."""
    d = ctx.out / ".edgeport-tmp" / "999999999-deadbeef" / "edgeport-tf-x"
    d.mkdir(parents=True)
    (d / "saved_model.pb").write_bytes(b"half")


def _real_export(*extra: str, code: int = 0) -> Callable[[Ctx], None]:
    """An earlier ``edgeport export --formats onnx`` into out (passing, or failing with ``code`` 1)."""
    def setup(ctx: Ctx) -> None:
        from edgeport.cli.main import main

        assert main(["export", str(ctx.src), "--formats", "onnx", "--outdir", str(ctx.out), *extra]) == code
    return setup


def _fake_train_set(ctx: Ctx) -> None:
    d = ctx.tmp / "ck"
    d.mkdir(parents=True, exist_ok=True)
    for n in TRAIN_SET:
        (d / n).write_text(f"earlier {n}")


def _data_copy_with(name: str, files: dict[str, bytes]) -> Callable[[Ctx], None]:
    def setup(ctx: Ctx) -> None:
        d = ctx.data / name
        d.mkdir(parents=True, exist_ok=True)
        for n, b in files.items():
            (d / n).write_bytes(b)
    return setup


def _copy_class(new: str) -> Callable[[Ctx], None]:
    def setup(ctx: Ctx) -> None:
        import shutil

        first = min(d for d in ctx.data.iterdir() if d.is_dir() and d.name != "noise")
        shutil.copytree(first, ctx.data / new)
    return setup


def _only_unreadable_audio(ctx: Ctx) -> None:
    import shutil

    shutil.rmtree(ctx.data)
    for c in ("sp_a", "sp_b"):
        (ctx.data / c).mkdir(parents=True)
        for i in range(3):
            (ctx.data / c / f"{i}.wav").write_bytes(os.urandom(400))


def _only_noise(ctx: Ctx) -> None:
    import shutil

    for d in list(ctx.data.iterdir()):
        if d.is_dir() and d.name != "noise":
            shutil.rmtree(d)


def _eval_artifact(ctx: Ctx) -> None:
    """An artifact file (never opened by these cases) and its model config, naming the audio folder's classes."""
    from edgeport.families.audio.model_config import (
        AudioModelConfig,
        write_model_config,
    )

    classes = tuple(sorted(d.name for d in ctx.data.iterdir() if d.is_dir() and d.name != "noise"))
    write_model_config(AudioModelConfig(sample_rate=16000, chunk_duration=0.5, spec_width=32, fft_length=256,
                                        num_mels=16, num_classes=len(classes), class_names=classes),
                       ctx.tmp / "m_model_config.json")
    (ctx.tmp / "m.onnx").write_bytes(b"not opened by these cases")


def _file(rel: str) -> Callable[[Ctx], None]:
    return _write(rel, b"a file, not a folder")


# ----------------------------------------------------------------------------------------- patches


def _enospc_on(module: str, attr: str, *, after: int = 0, path_arg: int = 0):
    """``module.attr`` raises ENOSPC (a full disk) from call ``after + 1`` on, naming its path argument."""
    def patch(ctx: Ctx, monkeypatch) -> None:
        import importlib

        mod = importlib.import_module(module)
        real = getattr(mod, attr)
        calls = {"n": 0}

        def full(*a, **k):
            calls["n"] += 1
            if calls["n"] > after:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(a[path_arg]))
            return real(*a, **k)

        monkeypatch.setattr(mod, attr, full)
    return patch


def _read_only(folder: str):
    """``folder`` is read-only (mocked: the suite may run as root, for whom chmod does not hold)."""
    def patch(ctx: Ctx, monkeypatch) -> None:
        import edgeport.fileio as fio

        ro = Path(ctx.fmt(folder)).resolve()
        real_access = os.access

        def access(p, mode, *a, **k):
            if mode & os.W_OK and Path(p).resolve() == ro:
                return False
            return real_access(p, mode, *a, **k)

        monkeypatch.setattr(fio.os, "access", access)
    return patch


def _read_only_fs(folder: str):
    """A read-only filesystem under ``folder`` (EROFS on mkdir there), access() says writable."""
    def patch(ctx: Ctx, monkeypatch) -> None:
        ro = Path(ctx.fmt(folder)).resolve()
        real_mkdir = Path.mkdir

        def mkdir(self, *a, **k):
            if Path(os.path.abspath(self)).is_relative_to(ro):
                raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(self))
            return real_mkdir(self, *a, **k)

        monkeypatch.setattr(Path, "mkdir", mkdir)
    return patch


def _interrupt_batches(nth: int):
    """Ctrl-C (KeyboardInterrupt) when epoch ``nth`` asks for its first batch."""
    def patch(ctx: Ctx, monkeypatch) -> None:
        from edgeport.training import data as D

        real = D.ChunkStream.batches
        calls = {"n": 0}

        def batches(self, *a, **k):
            calls["n"] += 1
            if calls["n"] == nth:
                raise KeyboardInterrupt
            yield from real(self, *a, **k)

        monkeypatch.setattr(D.ChunkStream, "batches", batches)
    return patch


def _interrupt_export_format(nth: int):
    def patch(ctx: Ctx, monkeypatch) -> None:
        import edgeport.export as E

        real = E._export_one
        calls = {"n": 0}

        def one(*a, **k):
            calls["n"] += 1
            if calls["n"] == nth:
                raise KeyboardInterrupt
            return real(*a, **k)

        monkeypatch.setattr(E, "_export_one", one)
    return patch


# ----------------------------------------------------------------------------------------- checks


def _manifest_lists_only_failed(ctx: Ctx) -> None:
    m = json.loads((ctx.out / "manifest.json").read_text())
    assert [(a["format"], a["status"], a["file"]) for a in m["artifacts"]] == [("onnx", "failed", "geomodel.failed.onnx")]


def _outside_untouched(ctx: Ctx) -> None:
    assert (ctx.tmp / "outside.txt").read_text() == "a file outside the output folder"
    assert not (ctx.out / "MODEL_LICENSE.txt").is_symlink()
    assert (ctx.out / "MODEL_LICENSE.txt").read_bytes() == (ctx.src.parent / "MODEL_LICENSE.txt").read_bytes()


def _interrupted_state(epoch: int) -> Callable[[Ctx], None]:
    def check(ctx: Ctx) -> None:
        s = json.loads((ctx.tmp / "ck" / "m_train_state.json").read_text())
        assert s["interrupted"] and not s["completed"] and s["epoch"] == epoch
    return check


# ----------------------------------------------------------------------------------------- the table

E = ("export",)
EG = ("export", "{src}", "--formats", "onnx", "--outdir", "{out}")  # the geo checkpoint to ONNX
T = ("train", "--data-path-train", "{data}", "--checkpoint-path", "{tmp}/ck/m.keras", *TINY_TRAIN, "--epochs", "1")
EV = ("evaluate", "{tmp}/m.onnx", "--data-path-test", "{data}", "--outdir", "{out}", "--no-progress")
RANDOM = bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8))

CASES: list[Case] = [
    # ---------------------------------------------------------------- bad files: model sources
    Case("empty .pt", "bad file", (*E, "{tmp}/empty.pt", "--outdir", "{out}"), r"empty.pt is empty \(0 bytes\)",
         setup=_write("{tmp}/empty.pt", b"")),
    Case("random bytes .pt", "bad file", (*E, "{tmp}/rand.pt", "--outdir", "{out}"),
         r"rand.pt is not a readable PyTorch checkpoint(?!.*trust-source)", setup=_write("{tmp}/rand.pt", RANDOM)),
    Case("truncated checkpoint", "bad file", EG, r"is not a readable PyTorch checkpoint", needs="geo",
         setup=_truncated_checkpoint),
    Case("zip of junk named .pt", "bad file", (*E, "{tmp}/z.pt", "--outdir", "{out}"),
         r"z.pt is not a readable PyTorch checkpoint", setup=_zip_of_junk("{tmp}/z.pt")),
    Case("folder named .pt", "bad file", (*E, "{tmp}/d.pt", "--outdir", "{out}"), r"d.pt is a directory",
         setup=lambda c: (c.tmp / "d.pt").mkdir()),
    Case(".pt2 that is not a zip", "bad file", (*E, "{tmp}/m.pt2", "--outdir", "{out}"),
         r"not a torch.export archive", setup=_write("{tmp}/m.pt2", RANDOM)),
    Case(".pt2 zip without a program", "bad file", (*E, "{tmp}/m.pt2", "--outdir", "{out}"),
         r"no models/model.json", setup=_zip_of_junk("{tmp}/m.pt2")),
    Case("random bytes .keras", "bad file", (*E, "{tmp}/m.keras", "--outdir", "{out}", "--quantization", "dynamic"),
         r"m.keras is not a readable Keras model file(?!.*not found)", setup=_write("{tmp}/m.keras", RANDOM)),
    Case("empty .keras", "bad file", (*E, "{tmp}/m.keras", "--outdir", "{out}", "--quantization", "dynamic"),
         r"m.keras is empty \(0 bytes\)", setup=_write("{tmp}/m.keras", b"")),
    Case("zip of junk named .keras", "bad file", (*E, "{tmp}/m.keras", "--outdir", "{out}", "--quantization",
         "dynamic"), r"m.keras is not a readable Keras model file", setup=_zip_of_junk("{tmp}/m.keras")),
    Case("unknown model suffix", "bad file", (*E, "{tmp}/m.h5", "--outdir", "{out}"), r"cannot read .*m.h5",
         setup=_write("{tmp}/m.h5", RANDOM)),
    # ---------------------------------------------------------------- bad files: side files and inputs
    Case("labels.txt not UTF-8", "bad file", EG, r"labels.txt is not UTF-8 text", needs="geo",
         setup=_labels(b"\xff\xfe\x00bad\tlabel\tname\n")),
    Case("labels.txt with 5 names for 64 outputs", "bad file", EG, r"labels.txt lists 5 labels but .* 64 values",
         needs="geo", setup=_five_labels),
    Case("labels.txt is a folder", "bad file", EG, r"cannot read .*labels.txt", needs="geo",
         setup=lambda c: ((c.src.parent / "labels.txt").unlink(), (c.src.parent / "labels.txt").mkdir())),
    Case("reference npz of strings", "bad file", (*EG, "--reference-inputs", "{tmp}/s.npz"),
         r"s.npz holds non-numeric arrays", needs="geo", setup=_npz("{tmp}/s.npz", lat=np.array(["a", "b"]))),
    Case("reference npz of objects (pickle)", "bad file", (*EG, "--reference-inputs", "{tmp}/obj.npz"),
         r"obj.npz is not a readable .npz file", needs="geo", setup=_object_npz),
    Case("reference npz of random bytes", "bad file", (*EG, "--reference-inputs", "{tmp}/r.npz"),
         r"r.npz is not a readable .npz file", needs="geo", setup=_write("{tmp}/r.npz", RANDOM)),
    Case("reference .npy (one unnamed array)", "bad file", (*EG, "--reference-inputs", "{tmp}/a.npy"),
         r"a.npy is not a readable .npz file .*np.savez", needs="geo",
         setup=lambda c: np.save(c.tmp / "a.npy", np.zeros((4, 3), np.float32))),
    Case("reference npz with no rows", "bad file", (*EG, "--reference-inputs", "{tmp}/e.npz"),
         r"have no rows", needs="geo", setup=_npz("{tmp}/e.npz", lat=np.zeros((0,), np.float32))),
    Case("reference npz missing", "bad file", (*EG, "--reference-inputs", "{tmp}/none.npz"),
         r"--reference-inputs file not found", needs="geo"),
    Case("reference npz lacks an input", "bad file", (*EG, "--reference-inputs", "{tmp}/w.npz"),
         r"lacks input array", needs="geo", setup=_npz("{tmp}/w.npz", wrong=np.zeros((4,), np.float32))),
    Case("calibration npz of strings", "bad file", (*EG, "--calibration-inputs", "{tmp}/s.npz"),
         r"--calibration-inputs .*non-numeric", needs="geo", setup=_npz("{tmp}/s.npz", lat=np.array(["x"]))),
    Case("--model-config missing", "bad file", (*E, "{tmp}/m.keras", "--model-config", "{tmp}/no.json",
         "--outdir", "{out}"), r"--model-config file not found", setup=_write("{tmp}/m.keras", RANDOM)),
    Case("--data-path-train is a file", "bad file", (*E, "{tmp}/m.keras", "--data-path-train", "{tmp}/f",
         "--outdir", "{out}"), r"--data-path-train .* is not a folder",
         setup=_all(_write("{tmp}/m.keras", RANDOM), _file("{tmp}/f"))),
    # ---------------------------------------------------------------- bad files: audio folders
    Case("train: class folder with no audio", "bad file", T, r"class folder\(s\) \['sp_empty'\] .* no readable audio",
         needs="audio", setup=_data_copy_with("sp_empty", {"notes.txt": b"no audio here"})),
    Case("train: only unreadable audio", "bad file", T, r"6 unreadable file\(s\) and no readable audio",
         needs="audio", setup=_only_unreadable_audio),
    Case("train: only noise folders", "bad file", T, r"holds only noise folders", needs="audio", setup=_only_noise),
    Case("train: data folder missing", "bad file", ("train", "--data-path-train", "{tmp}/nope", "--checkpoint-path",
         "{tmp}/ck/m.keras"), r"Training data folder not found"),
    Case("evaluate: class folder with no audio", "bad file", EV, r"class folder\(s\) \['sp_empty'\]", needs="audio",
         setup=_all(_eval_artifact, _data_copy_with("sp_empty", {}))),
    Case("evaluate: only unreadable audio", "bad file", EV, r"unreadable file\(s\) and no readable audio",
         needs="audio", setup=_all(_eval_artifact, _only_unreadable_audio)),
    Case("evaluate: artifact missing", "bad file", ("evaluate", "{tmp}/none.onnx", "--data-path-test", "{data}",
         "--outdir", "{out}"), r"Artifact not found", needs="audio"),
    Case("evaluate: model config of other classes", "bad file", EV, r"are not classes of the model", needs="audio",
         setup=_all(_eval_artifact, _copy_class("sp_new"))),
    # ---------------------------------------------------------------- bad flags
    Case("--gate format typo onxx", "bad flag", (*E, "{tmp}/x.pt", "--gate", "onxx.min_cosine=0.5"),
         r"--gate: unknown format 'onxx'; known: onnx, onnx_fp16"),
    Case("--gate unknown metric", "bad flag", (*E, "{tmp}/x.pt", "--gate", "onnx.bogus=3"),
         r"unknown metric\(s\) \['bogus'\] for onnx; known: max_abs_diff"),
    Case("--gate value not a number", "bad flag", (*E, "{tmp}/x.pt", "--gate", "onnx.min_cosine=abc"),
         r"--gate expects FORMAT.METRIC=VALUE"),
    Case("--gate cosine above 1", "bad flag", (*E, "{tmp}/x.pt", "--gate", "onnx_int8.min_cosine=1.5"),
         r"min_cosine is a fraction in \[0, 1\]"),
    Case("--gate negative bound", "bad flag", (*E, "{tmp}/x.pt", "--gate", "onnx.max_abs_diff=-1"),
         r"max_abs_diff must be >= 0"),
    Case("--gate without =", "bad flag", (*E, "{tmp}/x.pt", "--gate", "onnx.min_cosine"), r"FORMAT.METRIC=VALUE"),
    Case("hierarchy: a flag it does not read", "bad flag", (*E, "{tmp}/x.pt", "--family", "hierarchy",
         "--batch-validate", "3", "--outdir", "{out}"), r"--batch-validate does not apply to export --family hierarchy"),
    Case("hierarchy: --gate of a TFLite format", "bad flag", (*E, "{tmp}/x.pt", "--family", "hierarchy", "--gate",
         "tflite.min_cosine=0.9", "--outdir", "{out}"), r"--gate tflite: the hierarchy family's deliverables are ONNX"),
    Case("hierarchy: --ood-percentile 100", "bad flag", (*E, "{tmp}/x.pt", "--family", "hierarchy",
         "--ood-percentile", "100", "--outdir", "{out}"), r"--ood-percentile must be between 0 and 100, got 100"),
    Case("--min-cosine-sim 2", "bad flag", (*E, "{tmp}/x.keras", "--min-cosine-sim", "2"),
         r"--min-cosine-sim is a cosine similarity gate in \[0, 1\], got 2"),
    Case("--min-cosine-sim -0.1", "bad flag", (*E, "{tmp}/x.keras", "--min-cosine-sim", "-0.1"), r"in \[0, 1\]"),
    Case("--validate-samples 0", "bad flag", (*E, "{tmp}/x.keras", "--validate-samples", "0"),
         r"--validate-samples must be at least 1, got 0"),
    Case("--num-samples 0", "bad flag", (*E, "{tmp}/x.keras", "--num-samples", "0"), r"--num-samples must be at least 1"),
    Case("--calibration-samples 0", "bad flag", (*E, "{tmp}/x.pt", "--calibration-samples", "0"),
         r"--calibration-samples must be at least 1"),
    Case("--reference-rows 1", "bad flag", (*E, "{tmp}/x.pt", "--reference-rows", "1"),
         r"--reference-rows must be at least 2"),
    Case("--batch-validate -1", "bad flag", (*E, "{tmp}/x.pt", "--batch-validate", "-1"),
         r"--batch-validate must be at least 0"),
    Case("--tol -1", "bad flag", (*E, "{tmp}/x.pt", "--tol", "-1"), r"--tol must be >= 0"),
    Case("--tflite-batch 0", "bad flag", (*E, "{tmp}/x.pt", "--tflite-batch", "0"), r"--tflite-batch must be at least 1"),
    Case("unknown --formats", "bad flag", (*E, "{tmp}/x.pt", "--formats", "onnx_fp8"),
         r"invalid choice: 'onnx_fp8' .*\(see edgeport export --help\)"),
    Case("--formats all with another", "bad flag", (*EG[:3], "all", "onnx", "--outdir", "{out}"),
         r"'all' already means every format", needs="geo"),
    Case("--output-path not the INT8 name", "bad flag", (*E, "{tmp}/x.keras", "--output-path", "{out}/m.tflite"),
         r"--output-path must name the full-INT8 artifact"),
    Case("two sources", "bad flag", (*E, "{tmp}/a.pt", "--checkpoint", "{tmp}/b.pt"), r"two sources given"),
    Case("unknown flag", "bad flag", (*E, "--frobnicate"), r"unrecognized arguments: --frobnicate"),
    Case("train --resume with --force", "bad flag", (*T, "--resume", "--force"), r"--resume .* --force .*pass one",
         needs="audio"),
    Case("train --epochs 0", "bad flag", (*T[:-2], "--epochs", "0"), r"--epochs must be positive", needs="audio"),
    Case("train --batch-size 0", "bad flag", (*T, "--batch-size", "0"), r"--batch-size must be positive",
         needs="audio"),
    Case("train --val-split 1", "bad flag", (*T, "--val-split", "1"), r"--val-split must be in \[0, 1\)",
         needs="audio"),
    Case("train --max-samples 0", "bad flag", (*T, "--max-samples", "0"), r"--max-samples must be positive",
         needs="audio"),
    Case("train --label-smoothing 2", "bad flag", (*T, "--label-smoothing", "2"), r"--label-smoothing must be in",
         needs="audio"),
    Case("train --checkpoint-path not .keras", "bad flag", ("train", "--data-path-train", "{data}",
         "--checkpoint-path", "{tmp}/m.h5"), r"--checkpoint-path must end in .keras", needs="audio"),
    Case("train --qat without a model", "bad flag", (*T, "--qat"), r"train without --qat first", needs="audio"),
    Case("evaluate --max-samples 0", "bad flag", (*EV, "--max-samples", "0"), r"--max-samples must be at least 1",
         needs="audio", setup=_eval_artifact),
    Case("evaluate --n-boot 0", "bad flag", (*EV, "--species-report", "--n-boot", "0"), r"--n-boot must be at least 1",
         needs="audio", setup=_eval_artifact),
    Case("evaluate --ci 2", "bad flag", (*EV, "--ci", "2"), r"--ci is a confidence level in \(0, 1\)",
         needs="audio", setup=_eval_artifact),
    Case("evaluate --lme-sharpness 0", "bad flag", (*EV, "--pooling", "lme", "--lme-sharpness", "0"),
         r"--lme-sharpness must be a positive number", needs="audio", setup=_eval_artifact),
    Case("evaluate --threshold 1.5", "bad flag", (*EV, "--threshold", "1.5"), r"--threshold must be between 0 and 1",
         needs="audio", setup=_eval_artifact),
    Case("evaluate unknown --pooling", "bad flag", (*EV, "--pooling", "median"), r"median", needs="audio",
         setup=_eval_artifact),
    Case("evaluate --overlap -1", "bad flag", (*EV, "--overlap", "-1"), r"--overlap must be at least 0",
         needs="audio", setup=_eval_artifact),
    # ---------------------------------------------------------------- earlier outputs, symlinks, same folder
    Case("export over earlier exports", "earlier outputs", EG, r"holds earlier exports .*pass --force", needs="geo",
         setup=_earlier_export_files),
    Case("export over a symlinked licence", "earlier outputs", EG, r"holds symlinks \(never followed\)", needs="geo",
         setup=_licence_symlink),
    Case("export --force over a symlinked licence", "earlier outputs", (*EG, "--force"), r"", code=0, needs="geo",
         setup=_licence_symlink, leaves="outputs", outputs=ONNX_SET, check=_outside_untouched,
         what_is_left="the documented set; the link is replaced by a file, its target untouched"),
    Case("export over a user's labels.txt", "earlier outputs", EG, r"holds earlier exports \(labels.txt\)",
         needs="geo", setup=_users_labels),
    Case("export --outdir = the checkpoint's folder", "earlier outputs", (*EG[:4], "--outdir", "{srcdir}"), r"",
         code=0, needs="geo", leaves="outputs", outputs=ONNX_SET | {"checkpoint_best.pt"}, outdir="{srcdir}",
         what_is_left="the documented set beside the checkpoint; labels and licence are the sources themselves"),
    Case("export --force rerun whose artifact fails", "earlier outputs",
         (*EG, "--force", "--gate", "onnx.max_abs_diff=1e-12"), r"", code=1, needs="geo", setup=_real_export(),
         leaves="outputs", outputs=(ONNX_SET - {"geomodel.onnx", "geomodel_onnx_validation_data.npz"})
         | {"geomodel.failed.onnx", "geomodel.failed_onnx_validation_data.npz"}, check=_manifest_lists_only_failed,
         what_is_left="the new failed artifact and its vectors; the earlier passing one and its vectors are removed",
         slow=True),
    Case("export --force rerun after a failed one", "earlier outputs", (*EG, "--force"), r"", code=0, needs="geo",
         setup=_real_export("--gate", "onnx.max_abs_diff=1e-12", code=1), leaves="outputs", outputs=ONNX_SET,
         what_is_left="the documented set; the earlier .failed artifact and its vectors are removed", slow=True),
    Case("export --report-json over a file", "earlier outputs", (*EG, "--report-json", "{tmp}/r.json"),
         r"holds earlier outputs \(r.json\)", needs="geo", setup=_write("{tmp}/r.json", "{}")),
    Case("export cleans a killed run's staging", "earlier outputs", EG, r"", code=0, needs="geo",
         setup=_stale_staging, leaves="outputs", outputs=ONNX_SET,
         what_is_left="the documented set; the dead process's .edgeport-tmp folder is removed"),
    Case("train over an existing model", "earlier outputs", T, r"holds a trained model's files .*--force.*--resume",
         needs="audio", setup=_fake_train_set),
    Case("evaluate over earlier reports", "earlier outputs", EV, r"holds earlier evaluation reports .*--force",
         needs="audio", setup=_all(_eval_artifact, _write("{out}/evaluation.json", "{}"))),
    Case("evaluate --report-json over a file", "earlier outputs", (*EV, "--report-json", "{tmp}/r.json"),
         r"holds earlier evaluation reports \(r.json\)", needs="audio",
         setup=_all(_eval_artifact, _write("{tmp}/r.json", "{}"))),
    # ---------------------------------------------------------------- full or read-only folders
    Case("export --outdir is a file", "full or read-only folder", EG, r"--outdir .* is a file", needs="geo",
         setup=_file("{out}")),
    Case("export --outdir read-only", "full or read-only folder", EG, r"is not writable", needs="geo",
         setup=lambda c: c.out.mkdir(), patch=_read_only("{out}")),
    Case("export on a read-only filesystem", "full or read-only folder", EG, r"cannot write to .*Read-only file system",
         needs="geo", patch=_read_only_fs("{out}")),
    Case("export disk full writing the manifest", "full or read-only folder", (*EG, "--force"),
         r"could not write .*manifest.json \(No space left on device\); the traceback is in .*\.log", code=1,
         needs="geo", setup=_real_export(), patch=_enospc_on("edgeport.reporting.manifest", "atomic_write_json", after=1),
         slow=True, what_is_left="the earlier set, whole"),
    Case("export disk full writing the golden vectors", "full or read-only folder", (*EG, "--force"), r"",
         code=1, needs="geo", setup=_real_export(), patch=_enospc_on("edgeport.export", "atomic_save_npz"),
         leaves="outputs", outputs=ONNX_SET - {"geomodel.onnx", "geomodel_onnx_validation_data.npz",
                                               "geomodel_reference_validation_data.npz"}, slow=True,
         what_is_left="reports listing the format as an error; its earlier artifact removed (the manifest agrees)"),
    Case("evaluate --outdir is a file", "full or read-only folder", EV, r"is a file, not a folder", needs="audio",
         setup=_all(_eval_artifact, _file("{out}"))),
    Case("evaluate --outdir read-only", "full or read-only folder", EV, r"is not writable", needs="audio",
         setup=_all(_eval_artifact, lambda c: c.out.mkdir()), patch=_read_only("{out}")),
    Case("train checkpoint folder read-only", "full or read-only folder", T, r"is not writable", needs="audio",
         setup=lambda c: (c.tmp / "ck").mkdir(), patch=_read_only("{tmp}/ck")),
    Case("train disk full saving the model", "full or read-only folder", (*T, "--force"),
         r"could not write .*m.keras \(No space left on device\)", code=1, needs="audio", setup=_fake_train_set,
         patch=_enospc_on("edgeport.training.trainer", "save_model_atomic", path_arg=1), slow=True,
         what_is_left="the earlier set, whole"),
    # ---------------------------------------------------------------- interrupts (in process: KeyboardInterrupt)
    Case("train Ctrl-C in epoch 1 over a model", "interrupt", (*T[:-1], "3", "--force"), r"interrupted", code=130,
         needs="audio", setup=_fake_train_set, patch=_interrupt_batches(1), slow=True,
         what_is_left="the earlier set, whole"),
    Case("train Ctrl-C in epoch 2", "interrupt", (*T[:-1], "3"), r"interrupted", code=130, needs="audio",
         patch=_interrupt_batches(2), slow=True, check=_interrupted_state(1), leaves="outputs",
         outputs=TRAIN_SET - {"m_curves.png"}, outdir="{tmp}/ck",
         what_is_left="this run's set at epoch 1 (no curves yet), resumable"),
    Case("export Ctrl-C before the second format", "interrupt", (*EG[:3], "onnx", "onnx_fp16", "--outdir", "{out}",
         "--force"), r"interrupted", code=130, needs="geo", setup=_real_export(), patch=_interrupt_export_format(2),
         slow=True, what_is_left="the earlier set, whole"),
]

# the out folder of an "outputs" case is compared by name; everything else under tmp must be as before
for _c in CASES:
    if _c.leaves == "outputs":
        assert _c.outputs, _c.id


@dataclass(frozen=True)
class SignalCase:
    id: str
    point: str                     # tests.reliability._driver.POINTS
    signal: str                    # SIGINT | SIGKILL
    argv: tuple[str, ...]
    needs: str
    setup: Callable[[Ctx], None] | None = None
    code: int = 130                # -9 for SIGKILL
    leaves: str = "unchanged"
    outputs: frozenset[str] = frozenset()
    outdir: str = "{out}"
    what_is_left: str = "the earlier set, whole"
    kind: str = "interrupt"
    extra: dict = field(default_factory=dict)


SIGNAL_CASES: list[SignalCase] = [
    SignalCase("export SIGKILL during the SavedModel step", "export.savedmodel", "SIGKILL",
               (*EG[:3], "tf", "--outdir", "{out}", "--force"), "geo", setup=_real_export(), code=-9,
               what_is_left="the earlier set, whole; no edgeport-* folder in $TMPDIR; the next run removes the "
                            "killed run's .edgeport-tmp"),
    SignalCase("export SIGINT during validation", "export.validate", "SIGINT", (*EG, "--force"), "geo",
               setup=_real_export()),
    SignalCase("export SIGKILL while writing the reports", "export.reports", "SIGKILL", (*EG, "--force"), "geo",
               setup=_real_export(), code=-9),
    SignalCase("export SIGINT during the final moves", "export.commit", "SIGINT", (*EG, "--force"), "geo",
               setup=_real_export(), leaves="outputs", outputs=ONNX_SET,
               what_is_left="the new set, whole (the moves finish, then the interrupt)"),
    SignalCase("export SIGINT before any format", "export.source_loaded", "SIGINT", EG, "geo"),
    SignalCase("train SIGKILL in epoch 1 over a model", "train.epoch1", "SIGKILL", (*T[:-1], "3", "--force"),
               "audio", setup=_fake_train_set, code=-9),
    SignalCase("train SIGKILL in epoch 2", "train.epoch2", "SIGKILL", (*T[:-1], "3"), "audio", code=-9,
               leaves="outputs", outputs=TRAIN_SET - {"m_curves.png"}, outdir="{tmp}/ck",
               what_is_left="this run's set at epoch 1, whole and resumable"),
]
