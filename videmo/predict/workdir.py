"""A training run read back for inference: which checkpoint, the config, the input
normalisation, the class names and how the training data's faces were cut.

    WORKDIR/                    what `videmo train` writes (videmo/train/loop.py)
      config.json               the experiment config (ml_collections, as JSON)
      input_convention.json     the trunk's input normalisation
      checkpoints/<step>/       orbax checkpoints (videmo/train/checkpoint.py)
      metrics.json, eval_*.json metrics; they also name the classes

`--checkpoint` is the work directory (its latest step), its `checkpoints` folder (the same),
or a step folder `WORKDIR/checkpoints/<step>`.

Class names and face geometry come from the dataset the run trained on: its builder says
how its faces were prepared (face size, dlib padding, detection options; SynthEmo's faces
fill the frame at the config's size) and, once built, what its classes are called. When
the builder does not know the classes (a video_folder dataset that is not built here), the
work directory's metrics files do.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import ml_collections

from videmo.data.preparation import clip_processing, faces
from videmo.models.input_convention import InputConvention
from videmo.train import run_dir



@dataclasses.dataclass(frozen=True)
class TrainedRun:
  """A work directory's model, ready to rebuild.

  workdir: the run's directory. checkpoint: what to restore (the workdir for its latest
  step, or a step folder). config: the experiment config. convention: the input
  normalisation. class_names: [E]. clip_options: how the training data's faces were found,
  aligned (`clip_options.face.face_size` = S, the stored face side) and stored.
  """

  workdir: Path
  checkpoint: Path
  config: ml_collections.ConfigDict
  convention: InputConvention
  class_names: tuple[str, ...]
  clip_options: clip_processing.ClipOptions

  @property
  def face_size(self) -> int:
    return self.clip_options.face.face_size

  @property
  def crop_size(self) -> int:
    return int(self.config.input.crop_size)


def locate(checkpoint: str | os.PathLike) -> tuple[Path, Path]:
  """(work directory, checkpoint to restore) for a workdir, its checkpoints folder or a step folder."""
  path = Path(checkpoint).expanduser().absolute()
  if not path.exists():
    raise FileNotFoundError(f"--checkpoint {path} does not exist")
  workdir, step = run_dir.split_checkpoint_path(path)
  if step is not None:
    return workdir, path
  if path.name == run_dir.CHECKPOINTS_DIR and (path.parent / run_dir.CONFIG_FILE).exists():
    return path.parent, path.parent
  return path, path


def open_run(checkpoint: str | os.PathLike) -> TrainedRun:
  """Read a work directory (see the module docstring); errors name the missing file."""
  workdir, target = locate(checkpoint)
  config = run_dir.read_config(workdir, checkpoint)
  convention = run_dir.read_convention(workdir, checkpoint)
  class_names, options = dataset_facts(config, workdir)
  return TrainedRun(workdir, target, config, convention, class_names, options)


def dataset_facts(config: ml_collections.ConfigDict,
                  workdir: Path) -> tuple[tuple[str, ...], clip_processing.ClipOptions]:
  """(class names, preparation options) of the dataset `config.dataset` (see the module docstring)."""
  from videmo.data.preparation import prepare

  data_dir = prepare.data_dir_or_default(config.get("data_dir"))
  try:
    builder = prepare.load_builder(config.dataset, data_dir)
  except Exception as err:  # noqa: BLE001  TFDS raises many kinds for a dataset it cannot make
    raise ValueError(f"{workdir / run_dir.CONFIG_FILE}: dataset {config.dataset!r} is not one videmo can describe "
                     f"({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''})") from None
  builder_config = builder.builder_config
  if hasattr(builder_config, "clip_options"):  # afew, video_folder: dlib-aligned faces
    options = builder_config.clip_options()
  else:  # synthemo: the rendered face fills the frame, stored at config.size
    options = clip_processing.ClipOptions(face=faces.FaceOptions(face_size=int(builder_config.size)))
  try:
    names = tuple(builder.info.features["label"].names)
  except Exception:  # noqa: BLE001  a ClassLabel without names (video_folder not built here)
    names = ()
  names = names or _names_from_metrics(workdir)
  if not names:
    raise ValueError(f"cannot tell the class names of {config.dataset!r}: it is not built in {data_dir} and "
                     f"{workdir} has no metrics.json or eval_*.json; build the dataset there or set "
                     f"data_dir in {workdir / run_dir.CONFIG_FILE}")
  expected = config.model.get("num_classes")
  if expected is not None and expected != len(names):
    raise ValueError(f"{workdir / run_dir.CONFIG_FILE}: model.num_classes is {expected} but {config.dataset!r} "
                     f"has {len(names)} classes {list(names)}")
  return names, options


def _names_from_metrics(workdir: Path) -> tuple[str, ...]:
  for path in [workdir / f"{run_dir.METRICS_NAME}.json", *sorted(workdir.glob("eval_*.json"))]:
    try:
      classes = json.loads(path.read_text()).get("classes")
    except (OSError, ValueError, AttributeError):
      continue
    if classes:
      return tuple(classes)
  return ()
