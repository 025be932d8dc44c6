"""Default quantization settings, kept apart so the CLI can show them without torch."""

from __future__ import annotations

DEFAULT_FRAMEWORK = "brevitas"
# the bit widths x sparsities of the scan (one short QAT each: DEFAULT_SCAN_EPOCHS in a run)
DEFAULT_SCAN_BITS = (4, 6, 8)
DEFAULT_SCAN_SPARSITY = (0.0, 0.5)
DEFAULT_SCAN_EPOCHS = 3
