"""Unfolding: OmniFold and iterative Bayesian unfolding."""
