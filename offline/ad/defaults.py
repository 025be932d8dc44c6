"""Default settings of the anomaly-detection step, kept apart so the CLI can show them without torch."""

from __future__ import annotations

from enum import StrEnum

import numpy as np

# background efficiencies of the ABCD scan
DEFAULT_EPS_B = tuple(float(v) for v in np.round(np.geomspace(0.005, 0.05, 10), 5))
# train / validation / test fractions of the background file
DEFAULT_FRACTIONS = (0.6, 0.2, 0.2)
# L1 rate [kHz at 40 MHz] of the headline working point
DEFAULT_RATE_KHZ = 400.0
# rates [kHz] of the signal-efficiency table, and its bootstrap replicas
DEFAULT_RATES_KHZ = (1.0, 5.0, 10.0)
DEFAULT_BOOTSTRAP = 100
# R is a sum over 57 features, not the paper's per-feature mean (where λ = 10), so λ is larger.
# On toy events (30k background, the firmware preset of then, 57-32-16-4) λ = 100 / 1000 / 3000
# gave held-out dCor(R1, R2) 0.15 / 0.05 / 0.03 at unchanged AUC; `l1ad train --lambda-scan`
# redoes this. The 57-16-4 preset at λ = 1000 on the demo samples: benchmarks/results/firmware_margin_physics.md
DEFAULT_LAMBDA = 1000.0
# weight of the ABCD non-closure penalty of ABCDisCoTEC (offline/ad/closure.py); 0: DisCo alone
DEFAULT_CLOSURE_LAM = 0.0
# per-axis background efficiencies of the closure penalty's cuts (ABCD thresholds keep √ε_B per
# axis: ε_B from 10⁻⁴ to 0.25 is 0.01 to 0.5 per axis); pairs a batch cannot fill are skipped
DEFAULT_CLOSURE_EFFICIENCIES = (0.5, 0.3, 0.2, 0.1, 0.05, 0.02, 0.01)
# > 0: each training step moves each axis's grid by a factor exp(u), u uniform in ±jitter; 0: fixed
DEFAULT_CLOSURE_JITTER = 0.0
# training (one pair; the pipeline's `ad` mapping and `l1ad train` share these). Small batches: a
# default run trains on ~3000 events, and DisCo needs many steps to act (the paper used 10 000 on
# millions of events; raise it for large samples)
DEFAULT_PRESET = "firmware"
DEFAULT_EPOCHS = 100
DEFAULT_BATCH_SIZE = 256
DEFAULT_LR = 1e-3
DEFAULT_PATIENCE = 10


class Monitor(StrEnum):
    """What early stopping and the best checkpoint follow on the validation split."""

    loss = "loss"  # the training objective
    # R1 + R2 alone: with a large closure_lam the penalty measured on a small validation split is
    # noise, and it would stop a run that still improves
    reconstruction = "reconstruction"


DEFAULT_MONITOR = Monitor.loss.value
DEFAULT_DEVICE = "auto"
# ABCD: ε_B of the quoted significance, injected signal fraction of the background, and the
# smallest region, in effective events (Σw)²/Σw², that gets a pull (the paper skips regions under 100 events; default runs have
# ~10^4 test events, so 20)
DEFAULT_WORKING_EPS_B = 0.01
DEFAULT_INJECTION = 0.001
DEFAULT_MIN_REGION_EVENTS = 20
