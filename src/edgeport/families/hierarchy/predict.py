"""Serve a deliverables folder: images -> species top-k, the routed disease top-k, OOD distance and flag.

``Predictor(model_dir)`` loads everything once (species model, fused head model or every per-head file, OOD
detector) and checks the folder before any image is read; ``predict(images)`` can then be called many times.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgeport.errors import ConfigError, SourceError
from edgeport.families.hierarchy.images import Preprocessing, list_images, load_image

HEADS_MODES = ("fused", "per-file")
PRECISION_ORDER = ("onnx_int8", "onnx", "onnx_int8_static", "onnx_fp16")


def _softmax(x: np.ndarray) -> np.ndarray:
    z = np.exp(x - x.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


def _read_json(path: Path, what: str) -> dict:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SourceError(f"{path} not found: --model-dir must be a folder written by edgeport export "
                          "--family hierarchy") from None
    except ValueError as e:
        raise SourceError(f"{what} {path} is not valid JSON ({e})") from None


@dataclass
class Prediction:
    image: str
    species: list[tuple[str, float]]
    diseases: list[tuple[str, float]]
    ood_distance: float
    is_ood: bool

    def to_dict(self) -> dict:
        return {"image": self.image, "species": [{"name": n, "probability": p} for n, p in self.species],
                "diseases": [{"name": n, "probability": p} for n, p in self.diseases],
                "ood_distance": self.ood_distance, "is_ood": self.is_ood}


class Predictor:
    def __init__(self, model_dir, *, precision: str | None = None, heads: str = "fused", top_k: int = 3,
                 threads: int = 2):
        from edgeport.families.hierarchy import deliverables as d
        from edgeport.families.hierarchy.ood import load_ood
        from edgeport.runtimes.onnxruntime import OrtRunner

        if heads not in HEADS_MODES:
            raise ConfigError(f"--heads must be one of {HEADS_MODES}, got '{heads}'")
        if top_k < 1:
            raise ConfigError(f"--top-k must be >= 1, got {top_k}")
        self.dir = Path(model_dir)
        if not self.dir.is_dir():
            raise SourceError(f"--model-dir {self.dir} is not a folder")
        meta = _read_json(self.dir / d.METADATA, "metadata")
        self.heads_list = _read_json(self.dir / d.HEADS_LIST, "heads list")
        self.pre = Preprocessing.from_dict(meta["preprocessing"])
        self.class_names = [s["name"] for s in self.heads_list["species"]]
        self.diseases = [s["diseases"] for s in self.heads_list["species"]]
        species_files = {m["format"]: n for n, m in meta.get("models", {}).items() if m["role"] == "species"}
        fused_files = self.heads_list.get("fused_files", {})
        avail = [p for p in PRECISION_ORDER if p in species_files and (heads == "per-file" or p in fused_files)]
        if precision is None:
            if not avail:
                raise SourceError(f"{self.dir} holds no passed species model with its head files")
            precision = avail[0]
        if precision not in species_files:
            raise ConfigError(f"--precision {precision} is not in {self.dir} (it holds {sorted(species_files)})")
        self.precision, self.heads_mode, self.top_k = precision, heads, int(top_k)
        # check every file before loading any
        needed = [species_files[precision]]
        if heads == "fused":
            if precision not in fused_files:
                raise SourceError(f"{self.dir} has no fused head model for {precision}; use --heads per-file")
            needed.append(fused_files[precision])
        else:
            for s in self.heads_list["species"]:
                f = s["head_files"].get(precision)
                if f is None:
                    raise SourceError(f"{d.HEADS_LIST} lists no {precision} head for species '{s['name']}'")
                needed.append(f)
        missing = [f for f in needed if not (self.dir / f).is_file()]
        if missing:
            raise SourceError(f"{d.HEADS_LIST} / {d.METADATA} point at missing file(s) {missing[:5]} in {self.dir}")
        self.species = OrtRunner.open(self.dir / needed[0], threads=threads)
        if heads == "fused":
            self.fused = OrtRunner.open(self.dir / needed[1], threads=threads)
            self.head_runners = None
        else:
            self.fused = None
            self.head_runners = [OrtRunner.open(self.dir / f, threads=threads) for f in needed[1:]]
        self.ood = load_ood(self.dir, embedding_dim=int(self.heads_list["embedding_dim"]))
        self.ood_runner = OrtRunner.open(self.dir / meta["ood_detector"]["onnx"], threads=threads)

    def disease_logits(self, emb: np.ndarray, species_index: np.ndarray) -> list[np.ndarray]:
        """Per row, the routed head's logits (valid slots only)."""
        if self.fused is not None:
            out = self.fused.infer({"embedding": emb, "species_index": species_index.astype(np.int64)})
            return [row[:k] for row, k in zip(out["disease_logits"], out["valid_count"], strict=True)]
        return [self.head_runners[s].infer({"embedding": emb[i:i + 1]})["disease_logits"][0]
                for i, s in enumerate(species_index)]

    def predict_arrays(self, x: np.ndarray, names: list[str] | None = None) -> list[Prediction]:
        """``(N, 3, S, S)`` preprocessed float32 -> predictions."""
        x = np.asarray(x, np.float32)
        want = (3, self.pre.size, self.pre.size)
        if x.ndim != 4 or x.shape[1:] != want:
            raise ConfigError(f"inputs must be (N, {want[0]}, {want[1]}, {want[2]}), got {x.shape}")
        out = self.species.infer({"input": x})
        probs = _softmax(out["species_logits"].astype(np.float64))
        idx = np.argmax(probs, axis=1)
        dz = self.disease_logits(out["embedding"], idx)
        ood = self.ood_runner.infer({"embedding": out["embedding"]})
        k = self.top_k
        preds = []
        for i in range(len(x)):
            order = np.argsort(-probs[i])[:k]
            dp = _softmax(np.asarray(dz[i], np.float64))
            dorder = np.argsort(-dp)[:k]
            preds.append(Prediction(
                image=names[i] if names else str(i),
                species=[(self.class_names[j], float(probs[i, j])) for j in order],
                diseases=[(self.diseases[idx[i]][j], float(dp[j])) for j in dorder],
                ood_distance=float(ood["distance"][i]), is_ood=bool(ood["is_ood"][i])))
        return preds

    def predict(self, images, *, batch_size: int = 32) -> list[Prediction]:
        """Image files or folders (JPEG, PNG) -> one prediction per image, in sorted order within folders."""
        files = list_images(images, what="predict")
        preds = []
        for i in range(0, len(files), batch_size):
            chunk = files[i:i + batch_size]
            x = np.stack([load_image(f, self.pre) for f in chunk])
            preds += self.predict_arrays(x, [str(f) for f in chunk])
        return preds


def format_predictions(preds: list[Prediction]) -> str:
    from edgeport.reporting.table import columns

    rows = []
    for p in preds:
        rows.append((Path(p.image).name, ", ".join(f"{n} {q:.2f}" for n, q in p.species),
                     ", ".join(f"{n} {q:.2f}" for n, q in p.diseases), f"{p.ood_distance:.3g}",
                     "OOD" if p.is_ood else "ok"))
    return "\n".join(columns(("image", "species (top-k)", "disease (top-k)", "OOD distance", "OOD"), rows))
