"""A config's dataset: its TFDS builder opened in one place, and the facts a run needs from it.

`open_builder(config)` opens `config.dataset` in `config.data_dir` (or TFDS's default);
`facts(builder)` says what the run and its readers need to know without reading a record:
the class names, how the faces were found, aligned and stored (`clip_options`), whether the
builder writes every clip it lists (SynthEmo) or keeps a clip list beside its shards for
the clips preparation could not use (afew, video_folder), and the built dataset's folder.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import ml_collections

from videmo.data.preparation import clip_processing, faces


@dataclasses.dataclass(frozen=True)
class DatasetFacts:
  """name: the TFDS name (e.g. 'synthemo/small'). class_names: [E] ('' entries never; empty when
  the builder does not know them and the dataset is not built here). clip_options: how its
  faces were prepared (`clip_options.face.face_size` = S, the stored face side). directory:
  the built dataset's folder (its clip list lives there). writes_every_clip: True when every
  listed clip is in the shards (no clip list needed). synthetic: its faces are drawn (SynthEmo),
  so a model trained on it knows nothing of real faces."""

  name: str
  class_names: tuple[str, ...]
  clip_options: clip_processing.ClipOptions
  directory: Path
  writes_every_clip: bool
  synthetic: bool


def data_dir(config: ml_collections.ConfigDict) -> str:
  """config.data_dir, or TFDS's default folder when it is empty."""
  from videmo.data.preparation import prepare

  return prepare.data_dir_or_default(config.get("data_dir"))


def open_builder(config: ml_collections.ConfigDict) -> Any:
  """The TFDS builder of config.dataset in `data_dir(config)`; a one-line ValueError when TFDS
  cannot make it (an unknown name, a broken folder)."""
  from videmo.data.preparation import prepare

  try:
    return prepare.load_builder(config.dataset, data_dir(config))
  except Exception as err:  # noqa: BLE001  TFDS raises many kinds for a dataset it cannot make
    first = str(err).splitlines()[0] if str(err) else ""
    raise ValueError(f"dataset {config.dataset!r} cannot be opened in {data_dir(config)} "
                     f"({type(err).__name__}: {first})") from None


def facts(builder: Any) -> DatasetFacts:
  """What `builder`'s dataset is (see DatasetFacts); reads no record."""
  builder_config = builder.builder_config
  synthetic = not hasattr(builder_config, "clip_options")
  if not synthetic:  # afew, video_folder: dlib-aligned faces
    options = builder_config.clip_options()
  else:  # synthemo: the rendered face fills the frame, stored at config.size
    options = clip_processing.ClipOptions(face=faces.FaceOptions(face_size=int(builder_config.size)))
  try:
    names = tuple(builder.info.features["label"].names)
  except Exception:  # noqa: BLE001  a ClassLabel without names (video_folder not built here)
    names = ()
  return DatasetFacts(name=builder.name + ("/" + builder_config.name if builder_config else ""),
                      class_names=names, clip_options=options, directory=Path(builder.data_dir),
                      writes_every_clip=bool(getattr(builder, "WRITES_EVERY_CLIP", False)),
                      synthetic=synthetic)
