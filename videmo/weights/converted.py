"""The converted-weight directory: a VGG16 trunk stored with its input convention, written,
read back and loaded into a model strictly.

The paper's trunk is VGG16 pre-trained on VGG-Face (Sec. 3.1). The weights are published by
others in several formats (see `videmo.weights.formats` for how each is read, and
docs/pretrained.md for where to download them); `videmo convert-weights` turns any of them into
one directory that carries both the parameters and the input normalisation they need:

  DIR/params.npz     flat float32 arrays (no pickles), named like the Flax trunk's parameters:
                       'conv1_1/kernel' [3, 3, 3, 64] (HWIO) ... 'conv5_3/bias' [512];
                     with --keep-fc also 'fc6/kernel' [k, k, 512, N6] (k = 7 at 224x224),
                       'fc6/bias' [N6], 'fc7/kernel' [N6, N7], 'fc7/bias', 'fc8/kernel' [N7, N8],
                       'fc8/bias'.
  DIR/metadata.json  {"videmo_converted_weights": 1, "architecture": "vgg16",
                      "input_convention": {"channel_order": "RGB", "scale", "mean", "std"},
                      "source": {"format", "file", "bytes", "sha256", "container"},
                      "arrays": {name: shape}, "fc_kept", "class_names", "image_size", "notes"}

Every converted trunk takes RGB input: a BGR-trained first layer (Caffe) has its input channels
reversed, and its mean/std with them (`videmo.weights.formats.to_rgb`; `save_converted` refuses
anything else). Whoever feeds images to the trunk reads the convention from the directory
(`load_convention`), so weights and normalisation cannot be mismatched.

Loading is strict: `load_trunk_into` replaces `params['trunk']` with the converted arrays and
fails, one line per problem, on any missing, unexpected or mis-shaped parameter unless the
caller names it in `allow_missing` / `allow_unexpected` (regular expressions). The training config
points at a converted directory with

    config.init.weights = "DIR"            # '' or None: train from the random initialisation
    config.init.allow_missing = ()         # regexes, e.g. ("^conv5_",) to re-initialise block 5
    config.init.allow_unexpected = ()

and passes those three fields to `load_trunk_into`, then prints the returned report.

A trunk trained by videmo itself is written in the same format by `save_trained_trunk` (a run
with `config.export_trunk=True` leaves it in WORKDIR/trunk; `config.pretrain` chains such a run
before another): metadata 'source' then names the run and step instead of a published file.

Reading a directory (`load_metadata`, `load_convention`, `load_converted`) needs numpy only;
flax and jax are imported by the functions that handle a model's parameters.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np

from videmo.models.input_convention import InputConvention
from videmo.weights.common import FC_NAMES, SourceWeights, WeightFileError, shape_str

PARAMS_FILE = "params.npz"
METADATA_FILE = "metadata.json"
FORMAT_VERSION = 1

Nested = dict[str, dict[str, np.ndarray]]


@dataclasses.dataclass(frozen=True)
class LoadReport:
  """What `load_trunk_into` did; `str(report)` is a short human-readable summary."""

  directory: str
  trunk_key: str
  source: Mapping[str, Any]
  convention: InputConvention
  loaded: tuple[str, ...]
  num_params: int
  kept_at_init: tuple[str, ...] = ()
  ignored: tuple[str, ...] = ()
  notes: tuple[str, ...] = ()

  def __str__(self) -> str:
    src = self.source
    lines = [f"loaded {len(self.loaded)} arrays ({self.num_params:,} parameters) into "
             f"params[{self.trunk_key!r}] from {self.directory}",
             (f"  source: --format {src.get('format')} file {src.get('file')} "
              f"(sha256 {str(src.get('sha256'))[:12]}..., {src.get('container')})" if "sha256" in src
              else "  source: " + ", ".join(f"{k} {v}" for k, v in src.items())),
             f"  input convention: {self.convention.describe()}"]
    if self.kept_at_init:
      lines.append(f"  left at initialisation (allowed missing): {', '.join(self.kept_at_init)}")
    if self.ignored:
      lines.append(f"  ignored (allowed unexpected): {', '.join(self.ignored)}")
    lines += [f"  note: {n}" for n in self.notes]
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------
# Writing


def save_converted(output_dir: str | Path, source: SourceWeights, keep_fc: bool = False,
                   overwrite: bool = False) -> Path:
  """Write `source` (RGB) to a converted directory (fc layers only when keep_fc); returns it."""
  if source.convention.channel_order != "RGB":
    raise ValueError("save_converted expects RGB weights; pass them through to_rgb() first")
  if keep_fc and source.fc is None:
    raise ValueError("keep_fc=True but the weights were read without their fc layers")
  arrays = {
      f"{name}/{leaf}": a for name, (k, b) in source.conv.items()
      for leaf, a in (("kernel", k), ("bias", b))
  }
  if keep_fc:
    arrays.update({f"{name}/{leaf}": a for name, (k, b) in source.fc.items()
                   for leaf, a in (("kernel", k), ("bias", b))})
  return _write_directory(output_dir, arrays, source.convention, overwrite, {
      "source": {"format": source.format, "file": source.path.name,
                 "bytes": source.path.stat().st_size, "sha256": _sha256(source.path),
                 "container": source.container},
      "fc_kept": bool(keep_fc),
      "class_names": source.class_names if keep_fc else None,
      "image_size": source.image_size,
      "notes": list(source.notes),
  })


def save_trained_trunk(output_dir: str | Path, trunk: Mapping[str, Any], convention: InputConvention,
                       source: Mapping[str, Any], image_size: int | None = None,
                       overwrite: bool = False) -> Path:
  """Write a trunk trained by videmo to a converted directory, so another run can start from it.

  trunk: the `trunk` subtree of a model's params, {'conv1_1': {'kernel', 'bias'}, ...} (any
    width; numpy or jax arrays, fetched to the host here).
  convention: the input convention the trunk was trained with (RGB).
  source: where it came from, stored as metadata 'source' (e.g. {'format': 'videmo-run',
    'file': 'WORKDIR/checkpoints/800', 'step': 800, 'dataset': 'synthemo/stills'}).
  """
  from flax import traverse_util  # deferred: reading converted weights needs only numpy

  if convention.channel_order != "RGB":
    raise ValueError("save_trained_trunk expects a trunk with RGB input")
  arrays = {
      name: np.asarray(value)
      for name, value in traverse_util.flatten_dict(dict(trunk), sep="/").items()
  }
  bad = sorted(n for n, a in arrays.items() if not np.all(np.isfinite(a)))
  if bad:
    raise ValueError(f"cannot save the trunk to {output_dir}: {', '.join(bad[:3])} hold NaN or inf")
  return _write_directory(output_dir, arrays, convention, overwrite, {
      "source": dict(source), "fc_kept": False, "class_names": None, "image_size": image_size,
      "notes": ["trained by videmo"]})


def _write_directory(output_dir: str | Path, arrays: Mapping[str, np.ndarray], convention: InputConvention,
                     overwrite: bool, metadata: Mapping[str, Any]) -> Path:
  """DIR/params.npz (float32 `arrays`) then DIR/metadata.json (its presence means complete)."""
  out = check_output_dir(output_dir, overwrite)
  out.mkdir(parents=True, exist_ok=True)
  arrays = {k: np.ascontiguousarray(v, np.float32) for k, v in arrays.items()}
  (out / METADATA_FILE).unlink(missing_ok=True)
  tmp = out / (PARAMS_FILE + ".partial")
  with open(tmp, "wb") as f:
    np.savez(f, **arrays)
  os.replace(tmp, out / PARAMS_FILE)
  metadata = {"videmo_converted_weights": FORMAT_VERSION, "architecture": "vgg16",
              "input_convention": convention.to_dict(),
              "arrays": {k: list(v.shape) for k, v in arrays.items()}, **metadata}
  tmp = out / (METADATA_FILE + ".partial")
  tmp.write_text(json.dumps(metadata, indent=1))
  os.replace(tmp, out / METADATA_FILE)
  return out


def check_output_dir(output_dir: str | Path, overwrite: bool = False) -> Path:
  """The output directory, after checking it can be written (call before slow reading)."""
  out = Path(output_dir).expanduser()
  if out.exists() and not out.is_dir():
    raise WeightFileError(f"{out}: expected an output directory, found a file")
  if not overwrite and any((out / f).exists() for f in (PARAMS_FILE, METADATA_FILE)):
    raise WeightFileError(
        f"{out}: expected a new or empty output directory, found converted weights "
        f"there (pass --force to overwrite)")
  return out


def _sha256(path: Path) -> str:
  h = hashlib.sha256()
  with open(path, "rb") as f:
    for chunk in iter(lambda: f.read(1 << 24), b""):
      h.update(chunk)
  return h.hexdigest()


# ------------------------------------------------------------------------------------------------
# Reading a converted directory


def load_metadata(converted_dir: str | Path) -> dict[str, Any]:
  """DIR/metadata.json, checked to be a videmo converted-weight directory."""
  d = Path(converted_dir).expanduser()
  path = d / METADATA_FILE
  if not path.is_file() or not (d / PARAMS_FILE).is_file():
    raise WeightFileError(
        f"{d}: expected a converted weight directory ({METADATA_FILE} and {PARAMS_FILE}, "
        f"written by `videmo convert-weights`); not found")
  try:
    metadata = json.loads(path.read_text())
  except (OSError, ValueError) as e:
    raise WeightFileError(f"{path}: unreadable ({e}); re-run videmo convert-weights") from None
  version = metadata.get("videmo_converted_weights") if isinstance(metadata, dict) else None
  if version != FORMAT_VERSION:
    raise WeightFileError(
        f"{path}: expected videmo_converted_weights = {FORMAT_VERSION}, found {version!r}")
  return metadata


def load_convention(converted_dir: str | Path) -> InputConvention:
  """The input convention stored with converted weights (reads only the small metadata file)."""
  metadata = load_metadata(converted_dir)
  try:
    return InputConvention.from_dict(metadata["input_convention"])
  except (KeyError, TypeError, ValueError) as e:
    raise WeightFileError(
        f"{converted_dir}: bad input_convention in {METADATA_FILE} ({e})") from None


def load_converted(converted_dir: str | Path) -> tuple[Nested, InputConvention, dict[str, Any]]:
  """(trunk_params, convention, extras) of a converted directory.

  trunk_params: {'conv1_1': {'kernel': [3, 3, 3, 64], 'bias': [64]}, ...} float32 numpy arrays,
    the layout of `VGG16`'s params (whatever layers the file holds; names are checked on loading).
  convention: the InputConvention the trunk expects (always RGB).
  extras: {'fc': {'fc6': {'kernel', 'bias'}, ...} or None, 'class_names': list or None,
    'source': {...}, 'image_size': int or None, 'notes': [...], 'metadata': the whole metadata}.
  """
  d = Path(converted_dir).expanduser()
  metadata = load_metadata(d)
  convention = load_convention(d)
  try:
    with np.load(d / PARAMS_FILE, allow_pickle=False) as npz:
      arrays = {k: npz[k] for k in npz.files}
  except (OSError, ValueError, EOFError) as e:
    raise WeightFileError(f"{d / PARAMS_FILE}: unreadable ({type(e).__name__}: {e}); "
                          f"re-run videmo convert-weights") from None
  expected = {k: tuple(v) for k, v in metadata.get("arrays", {}).items()}
  found = {k: tuple(v.shape) for k, v in arrays.items()}
  if expected != found:
    diff = sorted(set(expected.items()) ^ set(found.items()))[:3]
    raise WeightFileError(
        f"{d}: {PARAMS_FILE} does not match {METADATA_FILE} (first differences "
        f"{diff}); the directory is corrupt or was edited -- re-run videmo convert-weights")
  trunk: Nested = {}
  fc: Nested = {}
  for key, value in arrays.items():
    if key.count("/") != 1:
      raise WeightFileError(
          f"{d / PARAMS_FILE}: expected names 'layer/kernel' or 'layer/bias', found {key!r}")
    layer, leaf = key.split("/")
    if value.dtype != np.float32:
      raise WeightFileError(f"{d / PARAMS_FILE}: expected {key} in float32, found {value.dtype}")
    if not np.all(np.isfinite(value)):
      raise WeightFileError(f"{d / PARAMS_FILE}: expected finite values in {key}, found NaN or inf")
    (fc if layer in FC_NAMES else trunk).setdefault(layer, {})[leaf] = value
  extras = {"fc": fc or None, "class_names": metadata.get("class_names"),
            "source": metadata.get("source", {}), "image_size": metadata.get("image_size"),
            "notes": metadata.get("notes", []), "metadata": metadata}
  return trunk, convention, extras


# ------------------------------------------------------------------------------------------------
# Strict loading into a model


def _patterns(patterns: Iterable[str] | str | None, field: str) -> tuple[str, ...]:
  """Regular expressions from a config field: one string or a sequence of them; checked."""
  if patterns is None:
    return ()
  if isinstance(patterns, str):
    patterns = (patterns,)
  out = tuple(p for p in patterns if p)
  for p in out:
    try:
      re.compile(p)
    except re.error as e:
      raise ValueError(f"init.{field}: {p!r} is not a valid regular expression ({e})") from None
  return out


def _matches(name: str, patterns: tuple[str, ...]) -> str | None:
  """The first pattern found (re.search) in `name`, e.g. 'conv5_3/kernel'; None if none is."""
  for p in patterns:
    if re.search(p, name):
      return p
  return None


def load_trunk_into(params: Mapping[str, Any],
                    converted_dir: str | Path,
                    allow_missing: Iterable[str] | str = (),
                    allow_unexpected: Iterable[str] | str = (),
                    trunk_key: str = "trunk") -> tuple[dict[str, Any], LoadReport]:
  """Replace params[trunk_key] with the converted arrays; strict about names and shapes.

  Args:
    params: the model's parameter dict (`variables['params']`), with the trunk under trunk_key,
      e.g. params['trunk']['conv1_1']['kernel'] [3, 3, 3, 64]. Not modified.
    converted_dir: a directory written by `videmo convert-weights`.
    allow_missing: regular expressions (re.search, e.g. '^conv5_', 'conv5_3/bias$') naming model
      parameters that may be absent from the file; they keep their values from `params`.
    allow_unexpected: regular expressions naming file arrays that may have no place in the
      model; they are ignored. A pattern that matches nothing is reported in the notes.

  Returns:
    (new_params, report): a new dict sharing every other entry with `params`; loaded leaves are
    numpy arrays of the model leaf's dtype (or jax arrays placed like the model's, if those are
    jax arrays). `str(report)` says what was loaded, from where, and the input convention.

  Raises:
    ValueError listing, one per line, every missing / unexpected parameter not allowed and every
    mis-shaped one (never allowed); a narrow trunk (width_divisor > 1) gets its own explanation.
    WeightFileError when the directory is not a valid converted directory.
  """
  from flax import traverse_util  # deferred: reading converted weights needs only numpy

  from videmo.models.vgg import VGG16_BLOCKS

  if hasattr(params, "unfreeze"):
    params = params.unfreeze()
  if not isinstance(params, Mapping) or trunk_key not in params:
    keys = list(params) if isinstance(params, Mapping) else type(params).__name__
    raise ValueError(
        f"expected the model's params with the VGG16 trunk under {trunk_key!r}; found keys "
        f"{keys} (pass variables['params'], not the whole variables dict)")
  trunk_file, convention, extras = load_converted(converted_dir)
  model = traverse_util.flatten_dict(params[trunk_key], sep="/")
  file = traverse_util.flatten_dict(trunk_file, sep="/")
  allow_missing = _patterns(allow_missing, "allow_missing")
  allow_unexpected = _patterns(allow_unexpected, "allow_unexpected")
  where = f"{converted_dir}"

  missing = sorted(set(model) - set(file))
  unexpected = sorted(set(file) - set(model))
  misshaped = sorted(
      n for n in set(model) & set(file) if tuple(model[n].shape) != tuple(file[n].shape))
  if misshaped and "conv1_1/kernel" in misshaped:
    m, f = tuple(model["conv1_1/kernel"].shape), tuple(file["conv1_1/kernel"].shape)
    full = VGG16_BLOCKS[0][0]  # conv1_1's channels at full width
    if len(m) == 4 and m[:3] == f[:3] and f[3] < full and full % m[3] == 0 and full % f[3] == 0:
      raise ValueError(
          f"params[{trunk_key!r}] is a VGG16 of width_divisor={full // m[3]} (conv1_1/kernel is "
          f"{shape_str(m)}), but {where} holds a trunk of width_divisor={full // f[3]} "
          f"({shape_str(f)}, e.g. exported by a narrower or wider videmo run); build the model "
          f"with trunk_width_divisor={full // f[3]} or drop init.weights")
    if len(m) == 4 and m[:3] == f[:3] and m[3] < f[3] and f[3] % m[3] == 0:
      raise ValueError(
          f"params[{trunk_key!r}] is a narrow VGG16 (width_divisor={f[3] // m[3]}: conv1_1/kernel "
          f"is {shape_str(m)}), but {where} holds full-width VGG16 weights ({shape_str(f)}); "
          f"pre-trained weights only fit a trunk with width_divisor=1 -- build the model with a "
          f"full-width trunk or drop init.weights")

  problems, used = [], set()

  def allowed(names, patterns, field, problem):
    """The names a pattern of `field` allows; a problem line for each other one."""
    out = []
    for n in names:
      p = _matches(n, patterns)
      if p is None:
        problems.append(problem(n))
      else:
        out.append(n)
        used.add((field, p))
    return out

  kept = allowed(missing, allow_missing, "allow_missing",
                 lambda n: f"missing: {n} {shape_str(model[n].shape)} is in the model but not in {where}")
  ignored = allowed(unexpected, allow_unexpected, "allow_unexpected",
                    lambda n: f"unexpected: {n} {shape_str(file[n].shape)} is in {where} but not in the model")
  for n in misshaped:
    problems.append(f"mis-shaped: {n} is {shape_str(model[n].shape)} in the model but "
                    f"{shape_str(file[n].shape)} in {where}")
  if problems:
    counts = (f"{sum(p.startswith('missing') for p in problems)} missing, "
              f"{sum(p.startswith('unexpected') for p in problems)} unexpected, "
              f"{len(misshaped)} mis-shaped")
    raise ValueError(
        f"cannot load {where} into params[{trunk_key!r}] ({counts}; name what may be left out "
        f"in init.allow_missing / init.allow_unexpected):\n  " + "\n  ".join(problems))

  new_flat = {}
  loaded = []
  for name, leaf in model.items():
    if name in file:
      new_flat[name] = _like(file[name], leaf)
      loaded.append(name)
    else:
      new_flat[name] = leaf
  notes = []
  for kind, patterns in (("allow_missing", allow_missing), ("allow_unexpected", allow_unexpected)):
    notes += [f"{kind} pattern {p!r} matched nothing" for p in patterns if (kind, p) not in used]
  new_params = dict(params)
  new_params[trunk_key] = traverse_util.unflatten_dict(new_flat, sep="/")
  report = LoadReport(directory=str(converted_dir),
                      trunk_key=trunk_key,
                      source=extras["source"],
                      convention=convention,
                      loaded=tuple(loaded),
                      num_params=int(sum(file[n].size for n in loaded)),
                      kept_at_init=tuple(kept),
                      ignored=tuple(ignored),
                      notes=tuple(notes))
  return new_params, report


def _like(value: np.ndarray, leaf: Any) -> Any:
  """`value` with the dtype (and, for jax arrays, the placement) of the model's leaf."""
  import jax  # deferred: reading converted weights needs only numpy

  dtype = getattr(leaf, "dtype", np.float32)
  if isinstance(leaf, jax.Array):
    return jax.device_put(np.asarray(value, dtype), leaf.sharding)
  return np.asarray(value, dtype)
