"""Evaluation of a classifier's scores against file labels: pooling, metrics, reports.

Independent of how model inputs are made: the audio pipeline yields ``(file_id, labels, inputs,
chunk_times)`` items and ``evaluate_runner`` does the rest. Report writing (matplotlib) is imported
only when used: ``from edgeport.evaluation.report import write_reports``; the audio side (a test folder,
an artifact, its model config) is ``edgeport.evaluation.audio.evaluate_audio_artifact``.
"""

from edgeport.evaluation.evaluate import (
    HEADLINE,
    EvaluationResult,
    chunk_times_from_starts,
    decide_sigmoid,
    evaluate_runner,
    evaluate_scores,
    pick_output,
    sigmoid,
)
from edgeport.evaluation.metrics import multilabel_metrics
from edgeport.evaluation.pooling import DEFAULT_LME_SHARPNESS, POOLINGS, pool_scores

__all__ = [
    "DEFAULT_LME_SHARPNESS",
    "HEADLINE",
    "POOLINGS",
    "EvaluationResult",
    "chunk_times_from_starts",
    "decide_sigmoid",
    "evaluate_runner",
    "evaluate_scores",
    "multilabel_metrics",
    "pick_output",
    "pool_scores",
    "sigmoid",
]
