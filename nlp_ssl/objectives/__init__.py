"""Pretext tasks: masking strategies and the collators that turn packed blocks into training batches."""
