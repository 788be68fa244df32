"""Manifest, validation.json, the printed table and report.html for an export folder."""

from edgeport.reporting.manifest import (
    build_manifest,
    framework_versions,
    write_outputs,
)
from edgeport.reporting.table import format_table, gate_text

__all__ = ["build_manifest", "format_table", "framework_versions", "gate_text", "write_outputs"]
