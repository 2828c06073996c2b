"""Preparation: videos -> faces -> a built dataset (`videmo prepare`, the TFDS builders, reports)."""
