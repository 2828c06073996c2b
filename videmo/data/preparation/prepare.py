"""`videmo prepare`: build one of videmo's datasets into array_record shards with TFDS.

    videmo prepare --dataset synthemo/small --data_dir ~/tensorflow_datasets
    videmo prepare --dataset afew --manual_dir ~/AFEW --data_dir ~/tensorflow_datasets --workers 8

`--dataset` uses TFDS's naming, NAME[/CONFIG][:VERSION]; `tfds build` builds the same
datasets (`tfds build videmo/data/preparation/builders/synthemo --config small`). Building is
resumable: TFDS skips a dataset that is complete, and builders that do slow per-clip work
cache it so an interrupted build does not redo finished clips. A builder that keeps a
preparation report (clips without a face, unreadable files, ...) writes it next to the data
as `prepare_report.json`; this command prints its summary.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from videmo.data.preparation.prepare_report import REPORT_NAME


def parse_args(argv: list[str]) -> argparse.Namespace:
  parser = argparse.ArgumentParser(prog="videmo prepare", description=__doc__.split("\n\n")[0])
  parser.add_argument("--dataset", required=True,
                      help="NAME[/CONFIG], e.g. synthemo/small, afew, video_folder/dfew (any config name)")
  parser.add_argument("--data_dir", default=data_dir_or_default(None),
                      help="where the shards go (default ~/tensorflow_datasets)")
  parser.add_argument("--manual_dir", default=None,
                      help="where manually downloaded data lives (afew: Train_AFEW/ and Val_AFEW/; video_folder)")
  parser.add_argument("--workers", type=int, default=None, help="worker processes (default: all cores)")
  parser.add_argument("--overwrite", action="store_true", help="rebuild even if the dataset is complete")
  return parser.parse_args(argv)


DEFAULT_DATA_DIR = "~/tensorflow_datasets"  # TFDS's own default


def data_dir_or_default(data_dir: str | os.PathLike | None) -> str:
  """`data_dir`, or ~/tensorflow_datasets when it is empty (config.data_dir = '')."""
  return os.path.expanduser(os.fspath(data_dir) if data_dir else DEFAULT_DATA_DIR)


def load_builder(dataset: str, data_dir: str | os.PathLike, workers: int | None = None):
  """The TFDS builder of one of videmo's datasets, e.g. 'synthemo/small'."""
  import tensorflow_datasets as tfds

  from videmo.data.preparation import builders

  name = dataset.split("/")[0].split(":")[0]
  if name not in builders.NAMES:
    raise ValueError(f"--dataset: unknown dataset {name!r}; videmo builds: {', '.join(builders.NAMES)}")
  if workers is not None and workers < 1:
    raise ValueError(f"--workers must be >= 1, got {workers}")
  # `workers` is always passed (None: all cores), which keeps TFDS on the builder's code: given only
  # a data_dir, it opens a built config that the code does not list (video_folder/dfew) from its
  # files alone, as a read-only builder without the config's options.
  return tfds.builder(dataset, data_dir=os.fspath(data_dir), file_format="array_record", workers=workers)


def summarise_report(report: dict, examples: int = 5) -> str:
  """Lines summarising a preparation report: its counts, and the first few entries of each
  list of problems (clips without a face, unreadable files, ...); the rest is in the file."""
  from videmo.data.preparation import prepare_report

  return "\n".join(prepare_report.summary_lines(report, examples))


def main(argv: list[str]) -> int:
  args = parse_args(argv)
  import tensorflow_datasets as tfds

  try:
    builder = load_builder(args.dataset, args.data_dir, args.workers)
  except ValueError as err:
    print(f"videmo prepare: {err}", file=sys.stderr)
    return 2
  manual_dir = os.path.expanduser(args.manual_dir) if args.manual_dir else None
  if manual_dir is not None and not os.path.isdir(manual_dir):
    print(f"videmo prepare: --manual_dir {manual_dir} is not a directory", file=sys.stderr)
    return 2
  download_config = tfds.download.DownloadConfig(
      manual_dir=manual_dir,
      download_mode=(tfds.download.GenerateMode.REUSE_CACHE_IF_EXISTS if args.overwrite
                     else tfds.download.GenerateMode.REUSE_DATASET_IF_EXISTS))
  try:
    builder.download_and_prepare(download_config=download_config, file_format="array_record")
  except KeyboardInterrupt:
    print(f"videmo prepare: {args.dataset}: interrupted; run the same command again to resume "
          "(clips already prepared are not redone)", file=sys.stderr)
    return 130
  except (FileNotFoundError, NotADirectoryError, ValueError, AssertionError,
          tfds.core.registered.DatasetNotFoundError) as err:
    # TFDS reports user errors (e.g. an empty manual_dir) as AssertionError.
    print(f"videmo prepare: {args.dataset}: {err}", file=sys.stderr)
    return 1
  print(f"{args.dataset}: written to {builder.data_dir}")
  for split, info in builder.info.splits.items():
    print(f"  {split}: {info.num_examples} clips")
  report_path = Path(builder.data_dir) / REPORT_NAME
  if report_path.exists():
    try:
      report = json.loads(report_path.read_text())
    except (OSError, ValueError) as err:
      print(f"videmo prepare: cannot read the report {report_path}: {err}", file=sys.stderr)
      return 0
    print(f"report ({report_path}):")
    print(summarise_report(report))
  return 0
