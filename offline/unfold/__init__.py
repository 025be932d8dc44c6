"""Unfolding: OmniFold (unbinned, multi-dimensional, torch) and iterative Bayesian unfolding.

``omnifold`` reweights a simulation so that its detector level matches data and returns
per-event weights at particle level, with an MLP on observables or Deep Sets / a
point-cloud transformer on particles (``point_cloud``); ``ibu`` is the binned baseline; ``examples`` holds
closure problems with known truth (Gaussian toy, Pythia 8 jets: two tunes, or the default
against the Vincia shower, produced by ``production`` through the event engine); ``metrics`` the
triangular discriminator of the OmniFold papers.
"""

from offline.unfold.classifiers import CLASSIFIERS, MLP, classifier_factory, make_classifier
from offline.unfold.diagnostics import (
    StepDiagnostics,
    diagnostics_table,
    effective_sample_size,
    largest_weights,
)
from offline.unfold.examples import (
    EXAMPLES,
    UnfoldingProblem,
    gaussian_toy,
    jets_example,
    vincia_jets_example,
    with_event_features,
)
from offline.unfold.ibu import Response, ibu, ibu_samples, response
from offline.unfold.metrics import (
    metric_table,
    sample_discriminator,
    triangular_discriminator,
    weighted_histogram,
    weighted_moments,
)
from offline.unfold.omnifold import (
    NonFiniteWeightsError,
    OmniFoldConfig,
    OmniFoldResult,
    bootstrap,
    check_inputs,
    omnifold,
)
from offline.unfold.point_cloud import DeepSets, PointCloudTransformer
from offline.unfold.workflow import read_arrays, run_unfold

__all__ = [
    "CLASSIFIERS",
    "EXAMPLES",
    "MLP",
    "DeepSets",
    "NonFiniteWeightsError",
    "OmniFoldConfig",
    "OmniFoldResult",
    "PointCloudTransformer",
    "Response",
    "StepDiagnostics",
    "UnfoldingProblem",
    "bootstrap",
    "check_inputs",
    "classifier_factory",
    "diagnostics_table",
    "effective_sample_size",
    "gaussian_toy",
    "ibu",
    "ibu_samples",
    "jets_example",
    "largest_weights",
    "make_classifier",
    "metric_table",
    "omnifold",
    "read_arrays",
    "response",
    "run_unfold",
    "sample_discriminator",
    "triangular_discriminator",
    "vincia_jets_example",
    "weighted_histogram",
    "weighted_moments",
    "with_event_features",
]
