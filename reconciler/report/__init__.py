"""Reports for pipelines: a plan or a drift check as Markdown (merge requests) or JUnit XML (CI test views).

Pure: plans and drift reports in, text out, the same text for the same data (no clock, no
environment), so a pipeline can diff two runs and a test can compare with a golden file.
"""

from __future__ import annotations

from reconciler.values import show_value

__all__ = ["show_value"]
