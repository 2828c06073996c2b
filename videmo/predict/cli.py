"""`videmo predict`: what a trained model decides on a video or a folder of videos, and why.

    videmo predict clip.mp4 --checkpoint runs/synthemo
    videmo predict ~/videos --checkpoint runs/sa2/checkpoints/7000 --report report/   # + figures, index.html
    videmo predict clip.mp4 --checkpoint runs/synthemo --json                         # one JSON record per video
    videmo predict synthemo_clip.mp4 --checkpoint runs/synthemo --aligned             # frames already are faces

VIDEO_OR_FOLDER is a video file, a folder of frame images, or a folder searched (with its
subfolders) for video files and frame folders. Each video is decoded, its face found and
aligned as preparation does, and the model sees every frame with a face (or the config's
input.eval_num_frames evenly spaced ones; --frames overrides). One line per video is
printed (prediction, probability, top-3), or with --json one record per line (fields:
docs/predict.md). Videos without a face or that cannot be read get a line (a record) that
says so; the others still run. Exit status: 0, or 1 when no video got a prediction.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path


def parse_args(argv: list[str]) -> argparse.Namespace:
  parser = argparse.ArgumentParser(prog="videmo predict", description=__doc__.split("\n\n")[0])
  parser.add_argument("video", metavar="VIDEO_OR_FOLDER", help="a video file, a frame folder, or a folder of them")
  parser.add_argument("--checkpoint", required=True,
                      help="a work directory (latest step) or WORKDIR/checkpoints/STEP")
  parser.add_argument("--report", metavar="OUT_DIR", default=None,
                      help="write a figure per video and OUT_DIR/index.html (Fig. 2 of the paper)")
  parser.add_argument("--json", action="store_true", help="print one JSON record per video instead of a line")
  parser.add_argument("--aligned", action="store_true",
                      help="the frames already are aligned faces (DFEW frames, SynthEmo clips): skip detection")
  parser.add_argument("--frames", type=int, default=None,
                      help="frames the model sees per video: 0 = every frame with a face, N = N evenly "
                           "spaced ones (default: the config's input.eval_num_frames)")
  parser.add_argument("--batch_frames", type=int, default=32, help="frames per forward pass (default 32)")
  parser.add_argument("--report_frames", type=int, default=8, help="frames shown per figure (default 8)")
  return parser.parse_args(argv)


def list_videos(folder: Path) -> tuple[list[Path], list[Path]]:
  """(videos, skipped files) under `folder`: video files and frame folders, in sorted order,
  searching subfolders that are not frame folders; hidden entries are ignored."""
  from videmo.data import video_io

  videos, skipped = [], []
  for entry in sorted(folder.iterdir()):
    if entry.name.startswith("."):
      continue
    if video_io.is_video_file(entry) or video_io.is_frame_folder(entry):
      videos.append(entry)
    elif entry.is_dir():
      found, ignored = list_videos(entry)
      videos += found
      skipped += ignored
    else:
      skipped.append(entry)
  return videos, skipped


def inputs(path: Path) -> list[Path]:
  """The videos to predict for VIDEO_OR_FOLDER (SystemExit with a one-line reason when there are none)."""
  from videmo.data import video_io

  if not path.exists():
    raise SystemExit(f"videmo predict: {path} does not exist")
  if path.is_file() or video_io.is_frame_folder(path):
    return [path]
  videos, skipped = list_videos(path)
  if skipped:
    examples = ", ".join(p.name for p in skipped[:3])
    print(f"videmo predict: skipping {len(skipped)} file(s) that are not videos ({examples}"
          f"{', ...' if len(skipped) > 3 else ''})", file=sys.stderr)
  if not videos:
    raise SystemExit(f"videmo predict: no video files or frame folders in {path}")
  return videos


def main(argv: list[str]) -> int:
  args = parse_args(argv)
  for flag in ("batch_frames", "report_frames"):
    if getattr(args, flag) < 1:
      raise SystemExit(f"videmo predict: --{flag} must be >= 1, got {getattr(args, flag)}")
  if args.frames is not None and args.frames < 0:
    raise SystemExit(f"videmo predict: --frames must be >= 0 (0 = every frame with a face), got {args.frames}")
  videos = inputs(Path(args.video).expanduser())

  from tqdm import tqdm

  from videmo.data.synthemo import render_clip
  from videmo.predict.predictor import Predictor
  from videmo.predict.report_folder import ReportFolder

  try:
    predictor = Predictor(args.checkpoint, num_frames=args.frames, batch_frames=args.batch_frames)
  except (FileNotFoundError, ValueError) as err:
    print(f"videmo predict: {err}", file=sys.stderr)
    return 1
  folder = None
  if args.report:
    folder = ReportFolder(Path(args.report).expanduser(), f"videmo predict: {args.video}",
                          max_frames=args.report_frames)
  root = Path(args.video).expanduser()
  predicted = 0
  bar = tqdm(videos, desc="predict", unit=" video", disable=len(videos) == 1, file=sys.stderr)
  for path in bar:
    truth = render_clip.ground_truth_beside(path)  # a `videmo render-clip` video's VIDEO.json
    if truth is not None and truth[0] not in predictor.class_names:
      truth = None
    prediction = predictor.predict(path, aligned=args.aligned, keep_faces=folder is not None,
                                   true_label=truth and truth[0], true_window=truth and truth[1])
    predicted += prediction.ok
    bar.write(json.dumps(prediction.to_json()) if args.json else prediction.summary(), file=sys.stdout)
    if folder is not None:
      folder.add(prediction, name=os.fspath(path.relative_to(root)) if path != root else path.name)
  bar.close()
  if folder is not None:
    index = folder.finish(note=f"model: {predictor.checkpoint}")
    print(f"videmo predict: wrote {index}", file=sys.stderr)
  return 0 if predicted else 1
