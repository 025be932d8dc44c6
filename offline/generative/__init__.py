"""Generative surrogates: GFlash reference showers, diffusion, distillation."""
