"""The batch check every TFLite test shares: a user's ``resize_tensor_input`` to batch 7 gives, row for row,
what batch-1 runs give (and -1 is on the batch axis of every input and output)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

#: rows of one artifact at batch 7 vs batch 1, by format (same weights and kernels: measured identical, 0.0)
RESIZE_ATOL = {"tflite": 1e-6, "tflite_fp16": 1e-6, "tflite_int8": 1e-5, "tflite_int8_full": 1e-5}


def resized_rows(path: Path, feeds: dict[str, np.ndarray], fmt: str) -> dict[str, np.ndarray]:
    """Batch-7 outputs of the artifact at ``path``, checked against its batch-1 outputs row by row."""
    from ai_edge_litert.interpreter import Interpreter

    from edgeport.runtimes import open_runner

    it = Interpreter(model_path=str(path))
    details = [*it.get_input_details(), *it.get_output_details()]
    assert [int(d["shape_signature"][0]) for d in details] == [-1] * len(details), path.name
    runner = open_runner("litert", path)
    assert runner.fixed_batch is None
    at7, at1 = runner.run_resized(feeds, 7), runner.run_resized(feeds, 1)
    rows = int(next(iter(feeds.values())).shape[0])
    for k in at1:
        assert at7[k].shape == at1[k].shape and at7[k].shape[0] == rows, (k, at7[k].shape, at1[k].shape)
        np.testing.assert_allclose(at7[k], at1[k], rtol=0, atol=RESIZE_ATOL[fmt], err_msg=f"{path.name}:{k}")
    return at7
