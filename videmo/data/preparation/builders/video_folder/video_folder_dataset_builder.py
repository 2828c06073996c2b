"""video_folder: any labelled video dataset on disk, prepared into aligned-face clips.

Two layouts of `--manual_dir`, chosen automatically:

  1. Annotation files (as DFEW, FERV39k and MAFW publish their labels): when manual_dir
     holds `*.csv` files (or the config names them), each row is `path, label[, split]`
     (comma, semicolon, tab or space separated; a header row is recognised and skipped).
     `path` is a video file or a folder of frames, relative to manual_dir (or absolute; the
     video suffix may be left out). The split is the third column (a number n gives
     "fold_n"), else the file's name: train.csv -> "train", test.csv -> "test".
     Folds (annotation_files.py): a file whose path names fold K (`set_K`, `fold_K`,
     `split_K`, in its name or its folder) lists fold K's clips, split "fold_K"; its
     training list (a path that also says `train`) is checked to be the other folds' clips.
     Without CSV files at the top, fold lists one or two folders down are used (DFEW's
     `EmoLabel_DataSplit/test(single-labeled)/set_K.csv`, or `set_K/test.csv`).
  2. A folder tree `<manual_dir>/<split>/<class>/<video or frame folder>`, e.g.
     train/happy/clip001.mp4, test/sad/clip7/000001.jpg.

Class names are the sorted labels (numerically when all are numbers, e.g. DFEW's 1..7) or
class folders of all splits, unless the config fixes them (`class_names`). Different
datasets go to different configs: any config name works, so

    videmo prepare --dataset video_folder/dfew --manual_dir ~/DFEW --data_dir ~/tensorflow_datasets
    videmo prepare --dataset video_folder/ferv39k --manual_dir ~/FERV39k ...

write to <data_dir>/video_folder/dfew/1.0.0 and <data_dir>/video_folder/ferv39k/1.0.0, and
read back with tfds.data_source("video_folder/dfew", data_dir=...). A k-fold dataset trains
on the union of the other folds (`--config.train_split=fold_2+fold_3 --config.eval_split=fold_1`;
`videmo sweep run --folds 3` runs every fold). The configs made from a bare name use the
default preparation (VideoClipConfig); pass a VideoFolderConfig object to tfds.builder for
other options.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Sequence

from videmo.data.preparation import clip_sources
from videmo.data.preparation.builders import clip_builder
from videmo.data.preparation.builders.video_folder import annotation_files


@dataclasses.dataclass(eq=False)
class VideoFolderConfig(clip_builder.VideoClipConfig):
  """A video_folder dataset. class_names: fix the classes and their order (labels or folders
  outside them are reported and skipped). annotations: annotation files relative to
  manual_dir (default: every *.csv at its top; none: the folder tree)."""

  class_names: tuple[str, ...] | None = None
  annotations: tuple[str, ...] | None = None


def list_video_folder(root: Path, class_names: Sequence[str] | None = None,
                      annotations: Sequence[str] | None = None):
  """(tasks per split, class names, listing issues) of a video_folder manual_dir."""
  root = Path(root)
  files = annotation_files.annotation_files(root, annotations)
  if files:
    return annotation_files.annotation_clips(root, files, class_names)
  return clip_sources.tree_clips(root, class_names)


class Builder(clip_builder.VideoClipBuilder):
  """A labelled video dataset from a folder tree or annotation CSVs, as 256x256 aligned face sequences."""

  MANUAL_DOWNLOAD_INSTRUCTIONS = """
  Put the videos (or frame folders) in manual_dir, either as <split>/<class>/<video or frame
  folder>, or anywhere under it with CSV files at its top listing `path, label[, split]`
  (train.csv/test.csv give the split by their name, a fold number n the split fold_n), or
  with per-fold lists one or two folders down (set_K/test.csv, or DFEW's
  test(single-labeled)/set_K.csv).
  """

  BUILDER_CONFIGS = [
      VideoFolderConfig(name="default", description="Frames where a face was found (the paper's preparation)."),
  ]

  def _create_builder_config(self, builder_config, version):
    """Any valid config name (dfew, ferv39k, ...) makes a config with the default options."""
    if isinstance(builder_config, str):
      name = builder_config.split(":")[0]
      if name not in self.builder_configs:
        if not re.fullmatch(r"[a-z0-9][a-z0-9_]*", name):
          raise ValueError(f"video_folder: config name {name!r} must be lower-case letters, digits and '_'")
        builder_config = VideoFolderConfig(name=name, version=self.VERSION,
                                           description=f"The video dataset prepared as {name!r}.")
    return super()._create_builder_config(builder_config, version)

  def _fixed_class_names(self):
    return self.builder_config.class_names

  def _list_clips(self, root: Path):
    config = self.builder_config
    return list_video_folder(root, config.class_names, config.annotations)
