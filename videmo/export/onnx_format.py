"""`--format onnx`: the network (videmo/export/network.py) converted to ONNX by jax2onnx.

jax2onnx traces the function with a symbolic frame count T and writes standard ONNX ops
(Conv, Gemm, Einsum, Softmax, ReduceLogSumExp, ...); the parameters become initialisers. The
file takes frames uint8 [1, T, C, C, 3] and mask bool [1, T] for any T >= 1, its outputs are
named as in `ExportableRun.output_names`, and metadata.py's fields are its metadata_props.

Poolings that convert: 'softmax' (the paper's), 'average', 'mean_score'. 'max' (a one-hot
over the frames) and 'lstm' (a scan over the frames) do not convert with a dynamic T in the
jax2onnx release videmo pins; `--format stablehlo` exports them.

Needs the `export` extra (jax2onnx, onnx, onnxruntime): `pip install -e ".[export]"`.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import warnings
from pathlib import Path

from videmo.export import metadata, network

OPSET = 21  # the ONNX opset written
CONVERTS = ("softmax", "average", "mean_score")
INSTALL = ('pip install -e ".[export]" in a clone of videmo (or: pip install "jax2onnx>=0.12.5,<0.13" onnx '
           'onnxruntime; jax2onnx needs Python >= 3.11)')


def require() -> None:
  """ImportError with the pip command when the `export` extra is not installed."""
  missing = []
  for name in ("jax2onnx", "onnx"):
    try:
      __import__(name)
    except ImportError:
      missing.append(name)
  if missing:
    raise ImportError(f"--format onnx needs {' and '.join(missing)} (the export extra): {INSTALL}")


def check_convertible(run: network.ExportableRun) -> None:
  """ValueError for a pooling jax2onnx cannot convert with a dynamic frame count."""
  if run.model.temporal not in CONVERTS:
    raise ValueError(f"model.temporal={run.model.temporal!r} does not convert to ONNX with a dynamic number of "
                     f"frames (ONNX converts {', '.join(CONVERTS)}); use --format stablehlo")


@contextlib.contextmanager
def _quiet():
  """jax2onnx's chatter off: its optional plugins for other libraries (equinox, dm-pix) log
  their import failures, some of its releases print debug lines and use deprecated JAX names,
  onnx_ir warns per constant."""
  loggers = [logging.getLogger(name) for name in ("jax2onnx", "onnx_ir")]
  levels = [logger.level for logger in loggers]
  for logger in loggers:
    logger.setLevel(logging.ERROR)
  try:
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
      warnings.simplefilter("ignore", DeprecationWarning)
      yield
  finally:
    for logger, level in zip(loggers, levels):
      logger.setLevel(level)


# The plugin trees a videmo network needs: its operations are jax's and flax linen's.
_PLUGIN_TREES = ("jax", "flax")


def _import_plugins() -> None:
  """Registers jax2onnx's converters for jax and flax, and only those.

  jax2onnx registers a converter when the module defining it is imported, and before its first
  conversion it imports every module under jax2onnx/plugins. Those for equinox build and run
  equinox models as they load (about 10 s on a 2-core EPYC, two thirds of a tiny network's whole
  export), and the examples are test cases. Here the jax and flax trees are imported, then
  jax2onnx's loader is marked done. Where the loader is not the one this was written against
  (jax2onnx 0.12), nothing is done and jax2onnx imports everything, as before.
  """
  from jax2onnx.plugins import plugin_system

  if getattr(plugin_system, "_already_imported_plugins", None) is not False or not hasattr(plugin_system, "_import_tree"):
    return
  root = Path(plugin_system.__file__).parent
  for tree in _PLUGIN_TREES:
    plugin_system._import_tree(root / tree, f"jax2onnx.plugins.{tree}")
  plugin_system._already_imported_plugins = True


def convert(run: network.ExportableRun):
  """The network as an onnx.ModelProto with metadata.py's fields (see the module docstring)."""
  require()
  check_convertible(run)
  import jax2onnx
  import onnx

  def forward(frames, mask):
    outputs = run.forward(frames, mask)
    return tuple(outputs[name] for name in run.output_names)

  with _quiet():
    _import_plugins()
    try:
      model = jax2onnx.to_onnx(forward, list(run.input_specs()), model_name="videmo", opset=OPSET,
                               input_names=list(network.INPUTS), output_names=list(run.output_names))
    except Exception as err:  # noqa: BLE001  the converter raises many kinds; say which, in one line
      first = str(err).strip().splitlines()[0] if str(err).strip() else ""
      raise ValueError(f"jax2onnx could not convert the network: {type(err).__name__}: {first}") from None
  model.doc_string = (f"videmo network of {run.checkpoint}: frames uint8 [1, T, C, C, 3], mask bool [1, T] -> "
                      f"{', '.join(run.output_names)}")
  onnx.helper.set_model_props(model, metadata.describe(run))
  onnx.checker.check_model(model)
  return model


def write(run: network.ExportableRun, path: str | os.PathLike) -> Path:
  """Convert and save to `path` (one self-contained file); returns the path."""
  import onnx

  model = convert(run)
  path = Path(path)
  onnx.save_model(model, os.fspath(path))
  return path
