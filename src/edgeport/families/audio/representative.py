"""Calibration and validation inputs for an audio model, from a labelled data folder (SPEC §3-4).

Calibration (the representative dataset of seed 001/003): up to ``num_samples`` rows from files drawn with
stratified class sampling (round robin over the class folders, shuffled within each), the centre chunk of each
file, near-silent chunks skipped (RMS < 0.01 on the raw waveform frontend, mean |x| < 0.01 on a spectrogram
input), shaped exactly as the model input. A folder with fewer files than ``num_samples`` gives more than one
row per file (``rows_per_file``): the centre chunk first, then the file's other chunks by decreasing energy (a
file of several chunks always keeps one for validation), so a small folder does not calibrate on a handful of
rows (measured: benchmarks/calibration_small.py).

Validation: chunks never used for calibration (the other chunks of the calibration files, then chunks of
files not drawn), seeded per ``--batch-validate`` seed, with the hard cases first: digital silence and
very quiet clips (a held-out chunk scaled down to -60 and -80 dB), which the in-graph per-sample
normalisation divides by on INT8 input.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgeport.errors import DataError
from edgeport.families.audio.model_config import AudioModelConfig

log = logging.getLogger(__name__)

#: Near-silent threshold of seed 003 (``snr_threshold``): RMS of a raw chunk, mean |x| of a spectrogram input.
SILENT_RMS = 0.01
#: Gains of the "very quiet" hard cases (-60 dB and -80 dB of a held-out chunk).
QUIET_GAINS = (1e-3, 1e-4)
#: Overlap of the chunk grid the chunks are cut from (the centre chunk is the middle one of this grid).
CHUNK_OVERLAP = 0.5
#: Most calibration rows one file gives when the folder has fewer files than ``num_samples`` (the default of
#: ``rows_per_file``; benchmarks/results/calibration_small.json).
MAX_ROWS_PER_FILE = 3


def default_rows_per_file(n_files: int, num_samples: int) -> int:
    """Calibration rows per file: 1 when the folder has ``num_samples`` files or more, otherwise enough to fill
    ``num_samples`` rows, at most ``MAX_ROWS_PER_FILE``."""
    if n_files >= num_samples:
        return 1
    return max(1, min(MAX_ROWS_PER_FILE, -(-num_samples // max(1, n_files))))


def calibration_order(chunks: np.ndarray) -> list[int]:
    """Chunk indices in calibration order: the centre chunk, then the others by decreasing energy."""
    centre = len(chunks) // 2
    energy = np.mean(np.square(chunks, dtype=np.float64), axis=1)
    rest = [int(j) for j in np.argsort(-energy, kind="stable") if j != centre]
    return [centre, *rest]


def is_near_silent(x: np.ndarray, chunk: np.ndarray, cfg: AudioModelConfig, threshold: float = SILENT_RMS) -> bool:
    """Seed 003's rule: raw input by the chunk's RMS, spectrogram inputs by mean |x|. Inputs min-max scaled per
    chunk carry no level: every chunk but digital silence reaches the model at full range (a quiet noise chunk
    included), and a tonal call's scaled |STFT| has mean |x| below 0.01 as often as not; only an all-zero
    input is near-silent there. ``threshold`` (the seed's ``snr_threshold``, default 0.01 for both levels)
    sets the level; 0 keeps every chunk."""
    from edgeport.audio.chunking import rms

    if threshold <= 0:
        return False
    if cfg.input_scaling == "minmax":
        return not np.any(x)
    if cfg.audio_frontend == "raw":
        return rms(chunk) < threshold
    return float(np.mean(np.abs(x))) < threshold


@dataclass
class AudioInputs:
    """The calibration rows and the held-out validation pool of one data folder, for one model config."""

    cfg: AudioModelConfig
    input_name: str
    root: Path
    calibration: np.ndarray
    calibration_classes: dict[str, int]
    heldout: np.ndarray
    hard_cases: np.ndarray
    hard_case_names: list[str]
    skipped_silent: int = 0
    skipped_unreadable: list[str] = field(default_factory=list)
    rows_per_file: int = 1
    files_used: int = 0

    def calibration_inputs(self, n: int = 1024, seed: int = 0) -> dict[str, np.ndarray]:
        """The first ``n`` calibration rows (the set is drawn once; ``seed`` is accepted for the hook API)."""
        return {self.input_name: self.calibration[: int(n)]}

    def reference_inputs(self, n: int = 256, seed: int = 0) -> dict[str, np.ndarray]:
        """Hard cases first, then ``n - hard`` held-out chunks drawn with ``seed`` (all of them when fewer)."""
        n = int(n)
        hard = self.hard_cases[:n]
        k = min(max(0, n - len(hard)), len(self.heldout))
        rng = np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(7,)))
        idx = np.sort(rng.choice(len(self.heldout), size=k, replace=False)) if k else np.zeros(0, np.int64)
        rows = np.concatenate([hard, self.heldout[idx]]) if k else hard
        return {self.input_name: rows.astype(np.float32)}

    def summary(self) -> dict:
        """What the manifest records beside the calibration set's size, range and hash."""
        tried = len(self.calibration) + self.skipped_silent
        return {
            "data_folder": str(self.root),
            "class_histogram": dict(self.calibration_classes),
            "chunk": "centre chunk of each file" if self.rows_per_file == 1 else
                     f"centre chunk of each file, then its most energetic other chunks (up to {self.rows_per_file})",
            "rows_per_file": self.rows_per_file,
            "files_used": self.files_used,
            "skipped_near_silent": self.skipped_silent,
            "skipped_near_silent_share": round(self.skipped_silent / tried, 4) if tried else 0.0,
            "value_percentiles": _percentiles(self.calibration),
            "skipped_unreadable": len(self.skipped_unreadable),
            "heldout_validation_chunks": len(self.heldout),
            "hard_cases": list(self.hard_case_names),
        }


def _stratified_order(folder_of: np.ndarray, n_folders: int, rng: np.random.Generator) -> list[int]:
    """File indices in round-robin order over the folders (each folder shuffled): any prefix is stratified."""
    per = [list(rng.permutation(np.flatnonzero(folder_of == f))) for f in range(n_folders)]
    order: list[int] = []
    while any(per):
        for q in per:
            if q:
                order.append(int(q.pop(0)))
    return order


def _percentiles(rows: np.ndarray) -> dict:
    """0.1 / 50 / 99.9 percentiles of the calibration values (the min/max calibration follows the extremes)."""
    if not rows.size:
        return {}
    q = np.percentile(rows, [0.1, 50, 99.9])
    return {"p0.1": float(q[0]), "p50": float(q[1]), "p99.9": float(q[2])}


def build_audio_inputs(data_path: Path | str, cfg: AudioModelConfig, *, input_name: str = "input",
                       num_samples: int = 1024, validate_samples: int = 256, seed: int = 0,
                       snr_threshold: float = SILENT_RMS, progress: bool = True,
                       rows_per_file: int | None = None) -> AudioInputs:
    """Read ``data_path`` once: calibration rows (centre chunks first, stratified) and held-out validation chunks.

    ``rows_per_file``: calibration rows one file may give (None: ``default_rows_per_file``); ``snr_threshold``:
    the near-silence level of calibration chunks (0 keeps every chunk).

    Raises ``DataError`` (one line) for a missing folder, a folder with no readable audio, or one whose
    chunks are all near-silent.
    """
    from tqdm.auto import tqdm

    from edgeport.audio.chunking import chunk_signal
    from edgeport.audio.dataset import scan_dataset
    from edgeport.families.audio.contract import features, load_audio

    if num_samples < 1:
        raise DataError(f"--num-samples must be >= 1, got {num_samples}")
    if rows_per_file is not None and rows_per_file < 1:
        raise DataError(f"rows per file must be >= 1, got {rows_per_file}")
    root = Path(data_path)
    ds = scan_dataset(root)  # DataError for a missing / empty / unreadable folder
    per_file = rows_per_file or default_rows_per_file(len(ds.files), num_samples)
    rng = np.random.default_rng(seed)
    order = _stratified_order(ds.folder_of, len(ds.folders), rng)
    n_chunk = cfg.chunk_samples
    calib, classes, heldout = [], {}, []
    skipped_silent, unreadable, files_used = 0, [], 0
    # keep reading files until the calibration set is full and the held-out pool can fill a validation set
    want_heldout = max(validate_samples * 2, 64)
    bar = tqdm(order, desc="representative dataset", unit="file", disable=not progress, leave=False)
    for i in bar:
        if len(calib) >= num_samples and len(heldout) >= want_heldout:
            break
        try:
            x = load_audio(ds.files[i], cfg)
        except Exception as e:  # noqa: BLE001 - a corrupt file is skipped and counted (SPEC §7)
            unreadable.append(f"{ds.files[i]}: {type(e).__name__}")
            continue
        chunks = chunk_signal(x, n_chunk, CHUNK_OVERLAP)
        taken = 0
        limit = min(per_file, max(1, len(chunks) - 1))  # a file of several chunks keeps one for validation
        for rank, j in enumerate(calibration_order(chunks)):
            ch = chunks[j]
            feat = features(ch, cfg)
            if rank < limit and len(calib) < num_samples:
                if is_near_silent(feat, ch, cfg, snr_threshold):
                    skipped_silent += 1  # not calibration; still a (hard) validation chunk
                    heldout.append(feat)
                    continue
                calib.append(feat)
                taken += 1
                name = ds.folders[ds.folder_of[i]]
                classes[name] = classes.get(name, 0) + 1
            else:
                heldout.append(feat)
        files_used += taken > 0
    bar.close()
    if unreadable:
        log.warning("skipped %d unreadable audio file(s) under %s: %s", len(unreadable), root,
                    ", ".join(u.split(":")[0] for u in unreadable[:5]))
    if not calib and unreadable and not skipped_silent:
        raise DataError(f"{root}: none of its {len(unreadable)} audio files could be decoded (e.g. {unreadable[0]}): "
                        "no calibration data; check the files")
    if not calib:
        raise DataError(f"{root}: every centre chunk is near-silent ({skipped_silent} skipped): no calibration "
                        "data; point --data-path-train at real recordings or use --quantization dynamic")
    if not heldout:
        raise DataError(f"{root}: no chunk is left for validation once the calibration chunks are taken; "
                        "give longer files or more files, or lower --num-samples")
    heldout_arr = np.stack(heldout).astype(np.float32)
    hard, names = _hard_cases(cfg, ds, order, root)
    return AudioInputs(cfg=cfg, input_name=input_name, root=root, calibration=np.stack(calib).astype(np.float32),
                       calibration_classes=classes, heldout=heldout_arr, hard_cases=hard, hard_case_names=names,
                       skipped_silent=skipped_silent, skipped_unreadable=unreadable, rows_per_file=per_file,
                       files_used=files_used)


def _hard_cases(cfg: AudioModelConfig, ds, order: list[int], root: Path) -> tuple[np.ndarray, list[str]]:
    """Digital silence and two very quiet clips (a real chunk at -60 / -80 dB), as model inputs."""
    from edgeport.audio.chunking import chunk_signal
    from edgeport.families.audio.contract import features, load_audio

    n = cfg.chunk_samples
    rows = [features(np.zeros(n, np.float32), cfg)]
    names = ["silence"]
    # the last file in the stratified order: a real chunk (its first), scaled down
    base = None
    for i in reversed(order):
        try:
            base = chunk_signal(load_audio(ds.files[i], cfg), n, CHUNK_OVERLAP)[0]
            break
        except Exception:  # noqa: BLE001, S112 - an unreadable file was counted already
            continue
    if base is not None:
        for g in QUIET_GAINS:
            rows.append(features(base * np.float32(g), cfg))
            names.append(f"quiet x{g:g} ({Path(ds.files[i]).relative_to(root)})")
    return np.stack(rows).astype(np.float32), names

