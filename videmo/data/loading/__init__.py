"""Loading: the input pipeline that turns a built dataset's shards into training and evaluation batches.

It reads a dataset from its own files and imports nothing of `videmo.data.preparation`
(an import-linter contract in pyproject.toml keeps it so).
"""
