"""Anomaly detection: the DisCo-decorrelated autoencoder pair and ABCD."""

from offline.ad.model import PRESETS, AEConfig, Autoencoder, AutoencoderPair, preset, reconstruction_error

__all__ = ["PRESETS", "AEConfig", "Autoencoder", "AutoencoderPair", "preset", "reconstruction_error"]
