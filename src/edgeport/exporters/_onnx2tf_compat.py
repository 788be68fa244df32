"""Running onnx2tf safely (version notes for onnx2tf 1.28.8, measured 2026-11-22).

- It rewrites its input ONNX file in place: we give it a copy inside a private temp folder.
- It calls the ``onnxsim`` executable from PATH three times (~13 s of a 15 s conversion on a geo-like
  model): edgeport passes ``not_use_onnxsim=True`` since the dynamo exporter already optimises the graph
  (1.8 s, same outputs), so no PATH set-up is needed.
- For 4-D inputs that look like images it downloads a calibration/test file from GitHub (fails offline):
  ``download_test_image_data`` is replaced by seeded synthetic data so that nothing is fetched.
- Exact GELU becomes ``FlexErf`` unless ``replace_to_pseudo_operators=["erf"]`` (lower case).
- ``non_verbose=True`` hides failures in its INT8 paths; we do not use those paths.
- It writes files next to the working directory in some modes: it runs with the temp folder as cwd.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from edgeport.errors import ConversionError, MissingDependencyError
from edgeport.exporters import _torch_compat


def _synthetic_images() -> np.ndarray:
    """Stands in for onnx2tf's downloaded 20x128x128x3 sample images (never fetched)."""
    return np.random.default_rng(0).uniform(0.0, 1.0, size=(20, 128, 128, 3)).astype(np.float32)


@contextlib.contextmanager
def offline_onnx2tf(workdir: Path) -> Iterator[object]:
    """Yield the ``onnx2tf`` module patched to never download, with cwd = workdir."""
    try:
        import onnx2tf
        import onnx2tf.onnx2tf as core
        from onnx2tf.utils import common_functions
    except ImportError:
        raise MissingDependencyError(
            "onnx2tf", "TF SavedModel export", None
        ) from None
    saved = (core.__dict__.get("download_test_image_data"), common_functions.download_test_image_data)
    old_cwd = os.getcwd()
    core.download_test_image_data = _synthetic_images
    common_functions.download_test_image_data = _synthetic_images
    os.chdir(workdir)
    try:
        yield onnx2tf
    finally:
        os.chdir(old_cwd)
        if saved[0] is not None:
            core.download_test_image_data = saved[0]
        common_functions.download_test_image_data = saved[1]


def convert(onnx_path: Path, out_dir: Path, workdir: Path, keep_layout: list[str] = ()) -> None:
    """ONNX -> SavedModel with onnx2tf (signature defs on, builtin-friendly GELU); ``keep_layout`` names 3-5-D
    inputs that keep their channels-first layout (onnx2tf makes them channels-last otherwise)."""
    extra = {"keep_ncw_or_nchw_or_ncdhw_input_names": list(keep_layout)} if keep_layout else {}
    with offline_onnx2tf(workdir) as onnx2tf, _torch_compat.quiet():
        try:
            onnx2tf.convert(
                input_onnx_file_path=str(onnx_path),
                output_folder_path=str(out_dir),
                output_signaturedefs=True,
                replace_to_pseudo_operators=["erf"],
                non_verbose=True,
                not_use_onnxsim=True,
                **extra,
            )
        except SystemExit as e:  # onnx2tf calls sys.exit on some failures
            raise ConversionError(f"onnx2tf failed (exit {e.code})") from None
        except Exception as e:
            raise ConversionError(f"onnx2tf failed: {type(e).__name__}: {str(e).splitlines()[0][:300]}") from e
