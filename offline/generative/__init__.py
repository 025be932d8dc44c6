"""Generative surrogates: GFlash reference showers, CaloScore-style diffusion, progressive distillation."""

from offline.generative.diffusion import (
    DiffusionConfig,
    ScoreMLP,
    ShowerDiffusion,
    ShowerTransform,
    TrainingData,
    alpha_permutations,
    layer_energies,
    train_diffusion,
)
from offline.generative.distill import distill_round, progressive_distillation
from offline.generative.evaluate import (
    ClassifierConfig,
    classifier_auc,
    evaluate_sample,
    high_level_features,
    w1_distances,
)
from offline.generative.geometry import DATASET1_PHOTONS, Geometry, Layer, read_binning_xml
from offline.generative.gflash import (
    DS1_ENERGIES_MEV,
    DS1_LAYER_DEPTHS_X0,
    PBWO4,
    GFlashSimulator,
    Material,
    mean_layer_fractions,
    sample_energies,
    sample_longitudinal,
)
from offline.generative.io import (
    ShowerFileError,
    Showers,
    read_shower_metadata,
    read_showers,
    validate_showers,
    write_showers,
)
from offline.generative.marginals import ConditionalMarginals, LatentCalibration

__all__ = [
    "DATASET1_PHOTONS",
    "DS1_ENERGIES_MEV",
    "DS1_LAYER_DEPTHS_X0",
    "PBWO4",
    "ClassifierConfig",
    "ConditionalMarginals",
    "DiffusionConfig",
    "GFlashSimulator",
    "Geometry",
    "LatentCalibration",
    "Layer",
    "Material",
    "ScoreMLP",
    "ShowerDiffusion",
    "ShowerFileError",
    "ShowerTransform",
    "Showers",
    "TrainingData",
    "alpha_permutations",
    "classifier_auc",
    "distill_round",
    "evaluate_sample",
    "high_level_features",
    "layer_energies",
    "mean_layer_fractions",
    "progressive_distillation",
    "read_binning_xml",
    "read_shower_metadata",
    "read_showers",
    "sample_energies",
    "sample_longitudinal",
    "train_diffusion",
    "validate_showers",
    "w1_distances",
    "write_showers",
]
