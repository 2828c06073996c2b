"""`--format stablehlo`: the network (videmo/export/network.py) as jax.export's serialised StableHLO.

The file holds the network lowered for CPU, CUDA and TPU with the frame count a symbolic
dimension T (>= 1), the parameters as constants. It needs JAX (no videmo, no Flax) to run:

    import jax, numpy as np
    exported = jax.export.deserialize(bytearray(open("model.stablehlo", "rb").read()))
    outputs = exported.call(frames, mask)   # frames uint8 [1, T, C, C, 3], mask bool [1, T] -> {name: array}

Every pooling exports, the LSTM and max included. metadata.py's fields go to OUT.json
beside the file (the serialised form has no place for them).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import jax

from videmo.export import metadata, network

PLATFORMS = ("cpu", "cuda", "tpu")


def serialize(run: network.ExportableRun) -> bytes:
  """The network exported by jax.export with a symbolic T, serialised (see the module docstring)."""
  exported = jax.export.export(jax.jit(run.forward), platforms=PLATFORMS)(*run.input_specs())
  return bytes(exported.serialize())


def sidecar(path: str | os.PathLike) -> Path:
  """OUT.json for OUT (the metadata file beside a StableHLO export)."""
  path = Path(path)
  return path.with_name(path.name + ".json")


def write(run: network.ExportableRun, path: str | os.PathLike) -> Path:
  """Serialise to `path` and the metadata to `sidecar(path)`; returns the path."""
  path = Path(path)
  path.write_bytes(serialize(run))
  sidecar(path).write_text(json.dumps(metadata.describe(run), indent=2) + "\n")
  return path
