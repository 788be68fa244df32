"""One comparator for every artifact: metrics, gates, and the result object.

The default gate of each format is on its ``FormatSpec`` (``edgeport.exporters.gate_for``).
"""

from edgeport.validation.comparator import Check, Comparison, OtherRun, compare
from edgeport.validation.gates import Gate
from edgeport.validation.metrics import OutputMetrics, output_metrics

__all__ = ["Check", "Comparison", "Gate", "OtherRun", "OutputMetrics", "compare", "output_metrics"]
