"""Offline side of l1ad: events, preprocessing, anomaly detection, unfolding, generative models."""
