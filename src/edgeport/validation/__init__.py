"""One comparator for every artifact: metrics, gates, and the result object."""

from edgeport.validation.comparator import Check, Comparison, compare
from edgeport.validation.gates import GATES, Gate, gate_for
from edgeport.validation.metrics import OutputMetrics, output_metrics

__all__ = ["Check", "Comparison", "compare", "GATES", "Gate", "gate_for", "OutputMetrics", "output_metrics"]
