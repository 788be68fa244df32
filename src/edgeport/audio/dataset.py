"""A labelled audio folder: one sub-folder per class, noise folders (``NOISE_CLASSES``) give all-zero labels.

Read the same way by training, evaluation and the audio family's calibration and reference inputs.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgeport.errors import DataError

log = logging.getLogger(__name__)

#: Folder names (case-insensitive) whose files are negatives: all-zero label vectors.
NOISE_CLASSES = ("noise", "silence", "background", "other")


@dataclass
class AudioDataset:
    """Files of a labelled folder: one sub-folder per class, noise folders give all-zero labels."""

    root: Path
    class_names: list[str]
    files: list[str]
    folder_of: np.ndarray            # (n,) folder index per file
    folders: list[str]               # folder names (classes and noise folders)
    labels: np.ndarray               # (n, K) float32 multi-hot
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def subset(self, idx) -> AudioDataset:
        idx = np.asarray(idx, dtype=np.int64)
        return AudioDataset(self.root, self.class_names, [self.files[i] for i in idx], self.folder_of[idx],
                            self.folders, self.labels[idx], self.skipped)

    def __len__(self) -> int:
        return len(self.files)


def is_noise_folder(name: str) -> bool:
    return name.lower() in NOISE_CLASSES


def scan_dataset(root: Path | str, *, max_samples: int | None = None, seed: int = 42,
                 class_names: list[str] | None = None) -> AudioDataset:
    """List the readable audio files under ``root/<class>/``; unreadable ones are skipped and listed.

    ``class_names`` fixes the label order (e.g. QAT on a pretrained model); otherwise sorted folder names.
    """
    from edgeport.audio.io import scan_files

    root = Path(root)
    if not root.is_dir():
        raise DataError(f"Training data folder not found: {root}")
    rng = np.random.default_rng(seed)
    folders, per_folder, skipped, empty = [], [], [], []
    for sub in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        rep = scan_files(sub)
        skipped.extend(rep.skipped)
        if not rep.files:
            empty.append(sub.name)
            continue
        files = [str(p) for p in rep.files]
        if max_samples is not None and len(files) > max_samples:
            files = sorted(rng.choice(files, size=max_samples, replace=False).tolist())
        folders.append(sub.name)
        per_folder.append(files)
    if skipped:
        shown = ", ".join(Path(p).name for p, _ in skipped[:5])
        log.warning("Skipped %d unreadable audio file(s) under %s: %s%s", len(skipped), root, shown,
                    " ..." if len(skipped) > 5 else "")
    if not folders:
        what = f"{len(skipped)} unreadable file(s) and no readable audio" if skipped else "no audio files"
        raise DataError(f"{root} holds {what} in class sub-folders: expected {root}/<species>/<files>.wav "
                        f"(noise folders: {', '.join(NOISE_CLASSES)})")
    if empty:
        raise DataError(f"class folder(s) {empty[:5]} under {root} hold no readable audio: add recordings or remove "
                        "the folder (a class with no files cannot be learned or scored)")
    found = [f for f in folders if not is_noise_folder(f)]
    if class_names is None:
        class_names = found
        if not class_names:
            raise DataError(f"{root} holds only noise folders ({', '.join(folders)}): add one sub-folder per species")
    else:
        unknown = [f for f in found if f not in class_names]
        if unknown:
            raise DataError(f"Folders {unknown} under {root} are not classes of the model ({len(class_names)} "
                            "classes): use --linear-probe to train a head for a new class set")
    index = {c: i for i, c in enumerate(class_names)}
    files, folder_of, labels = [], [], []
    for fi, (name, fl) in enumerate(zip(folders, per_folder, strict=True)):
        for f in fl:
            y = np.zeros(len(class_names), np.float32)
            if not is_noise_folder(name):
                y[index[name]] = 1.0
            files.append(f)
            folder_of.append(fi)
            labels.append(y)
    return AudioDataset(root, list(class_names), files, np.asarray(folder_of, np.int64), folders,
                        np.stack(labels), skipped)
