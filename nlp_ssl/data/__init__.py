"""Data: sources (Hub or local files), held-out splits, block packing, corpus preparation."""
