"""`videmo predict`: what a trained model decides on a video or a folder of videos, and why.

    videmo predict clip.mp4 --checkpoint runs/synthemo
    videmo predict ~/videos --checkpoint runs/sa2/checkpoints/7000 --report report/   # + figures, index.html
    videmo predict clip.mp4 --checkpoint runs/synthemo --json                         # one JSON record per video
    videmo predict synthemo_clip.mp4 --checkpoint runs/synthemo --aligned             # frames already are faces
    videmo predict ~/videos --checkpoint runs/synthemo --max_seconds 10 --timing      # first 10 s; where time went
    videmo predict party.mp4 --checkpoint runs/synthemo --faces all --timeline t.csv  # everyone; per-frame CSV

VIDEO_OR_FOLDER is a video file, a folder of frame images, or a folder searched (with its
subfolders) for video files and frame folders. Each video is decoded, its face found and
aligned as preparation does, and the model sees every frame with a face (or the config's
input.eval_num_frames evenly spaced ones; --frames overrides). One line per video is
printed (prediction, probability, top-3), or with --json one record per line (fields:
docs/predict.md). Videos without a face or that cannot be read get a line (a record) that
says so; the others still run. Exit status: 0, or 1 when no video got a prediction.

--faces all follows every person in the shot instead of the main face alone: each keeps one
number through cuts, occlusions and re-entries, and gets a prediction pooled over their own
frames (a line, a record with `person` and `frames`, a row of the report). --timeline FILE
(.csv or .jsonl) writes one row per frame seen and person (videmo/predict/timeline.py); with
it the model sees every frame with a face unless --frames says otherwise.

A folder runs as a stream (videmo/predict/stream.py): the next videos are decoded and their
faces found in a background thread while the model works, the frames of several short
videos share a forward pass, and a progress bar (stderr, when it is a terminal; --quiet
turns it off) counts the videos. Ctrl-C stops after what is done: the report then holds the
videos predicted so far.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path


def parse_args(argv: list[str]) -> argparse.Namespace:
  parser = argparse.ArgumentParser(prog="videmo predict", description=__doc__.split("\n\n")[0])
  parser.add_argument("video", metavar="VIDEO_OR_FOLDER", nargs="?", default=None,
                      help="a video file, a frame folder, or a folder of them (or --stream SOURCE)")
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
  parser.add_argument("--faces", choices=("main", "all"), default="main",
                      help="main: the clip's main face (default); all: every person, one prediction each")
  parser.add_argument("--timeline", metavar="FILE", default=None,
                      help="write one row per frame seen and person to FILE (.csv or .jsonl; columns: docs/predict.md)")
  parser.add_argument("--batch_frames", type=int, default=32, help="frames per forward pass (default 32)")
  parser.add_argument("--report_frames", type=int, default=8, help="frames shown per figure (default 8)")
  parser.add_argument("--max_frames", type=int, default=None,
                      help="read at most the first N frames of each video (default: all)")
  parser.add_argument("--max_seconds", type=float, default=None,
                      help="read at most the first S seconds of each video (default: all)")
  parser.add_argument("--prefetch", type=int, default=None,
                      help="videos whose faces are made ahead of the model, in a background thread "
                           "(default 8; 0: one video after the other)")
  parser.add_argument("--timing", action="store_true",
                      help="print where the time went (decoding + faces, model, waiting) to stderr at the end")
  parser.add_argument("--quiet", action="store_true", help="no progress bar and no notes on stderr")
  # Live streams: videmo/predict/live_cli.py, docs/predict.md "Live streams".
  live = parser.add_argument_group("live streams (--stream)")
  live.add_argument("--stream", metavar="SOURCE", default=None,
                    help="predict a live stream as it comes: - (stdin), a URL (udp://, rtsp://, ...), a device, "
                         "or a file still being written")
  live.add_argument("--window_seconds", type=float, default=4.0, help="the rolling window, seconds (default 4)")
  live.add_argument("--every", type=float, default=1.0, help="seconds of stream time between predictions (default 1)")
  live.add_argument("--idle_seconds", type=float, default=10.0,
                    help="no new data this long ends the stream (default 10)")
  live.add_argument("--queue_frames", type=int, default=16,
                    help="decoded frames waiting for the model; beyond it the oldest are dropped (default 16)")
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


def inputs(path: Path, quiet: bool = False) -> list[Path]:
  """The videos to predict for VIDEO_OR_FOLDER (SystemExit with a one-line reason when there are none)."""
  from videmo.data import video_io

  if not path.exists():
    raise SystemExit(f"videmo predict: {path} does not exist")
  if path.is_file() or video_io.is_frame_folder(path):
    return [path]
  videos, skipped = list_videos(path)
  if skipped and not quiet:
    examples = ", ".join(p.name for p in skipped[:3])
    print(f"videmo predict: skipping {len(skipped)} file(s) that are not videos ({examples}"
          f"{', ...' if len(skipped) > 3 else ''})", file=sys.stderr)
  if not videos:
    raise SystemExit(f"videmo predict: no video files or frame folders in {path}")
  return videos


def check_args(args: argparse.Namespace) -> None:
  """SystemExit with one line naming the first flag out of range."""
  for flag in ("batch_frames", "report_frames"):
    if getattr(args, flag) < 1:
      raise SystemExit(f"videmo predict: --{flag} must be >= 1, got {getattr(args, flag)}")
  if args.frames is not None and args.frames < 0:
    raise SystemExit(f"videmo predict: --frames must be >= 0 (0 = every frame with a face), got {args.frames}")
  if args.max_frames is not None and args.max_frames < 1:
    raise SystemExit(f"videmo predict: --max_frames must be >= 1, got {args.max_frames}")
  if args.max_seconds is not None and not args.max_seconds > 0:
    raise SystemExit(f"videmo predict: --max_seconds must be > 0, got {args.max_seconds}")
  if args.prefetch is not None and args.prefetch < 0:
    raise SystemExit(f"videmo predict: --prefetch must be >= 0, got {args.prefetch}")
  if args.faces == "all" and args.aligned:
    raise SystemExit("videmo predict: --faces all finds the faces, so it cannot be used with --aligned")
  if args.timeline is not None:
    from videmo.predict import timeline

    try:
      timeline.check_path(Path(args.timeline).expanduser())
    except ValueError as err:
      raise SystemExit(f"videmo predict: {err}") from None


def main(argv: list[str]) -> int:
  args = parse_args(argv)
  if args.stream is not None or args.video is None:  # a live stream (videmo/predict/live_cli.py)
    from videmo.predict import live_cli

    return live_cli.main(args)
  check_args(args)
  videos = inputs(Path(args.video).expanduser(), quiet=args.quiet)

  from tqdm import tqdm

  from videmo.data.synthemo import render_clip
  from videmo.predict import stream, timeline
  from videmo.predict.predictor import Predictor
  from videmo.predict.report_folder import ReportFolder

  num_frames = 0 if args.frames is None and args.timeline else args.frames  # a timeline: every frame
  try:
    predictor = Predictor(args.checkpoint, num_frames=num_frames, batch_frames=args.batch_frames,
                          max_frames=args.max_frames, max_seconds=args.max_seconds)
  except (FileNotFoundError, ValueError) as err:
    print(f"videmo predict: {err}", file=sys.stderr)
    return 1
  if predictor.synthetic_training and not args.quiet:  # records and report say it regardless
    from videmo.predict.record import SYNTHETIC_NOTICE

    print(f"videmo predict: note: {SYNTHETIC_NOTICE.format(dataset=predictor.trained_on)}", file=sys.stderr)
  folder = None
  if args.report:
    folder = ReportFolder(Path(args.report).expanduser(), f"videmo predict: {args.video}",
                          max_frames=args.report_frames)
  root = Path(args.video).expanduser()
  names = {path: os.fspath(path.relative_to(root)) if path != root else path.name for path in videos}

  def job(path: Path) -> stream.VideoJob:
    truth = render_clip.ground_truth_beside(path)  # a `videmo render-clip` video's VIDEO.json
    if truth is not None and truth[0] not in predictor.class_names:
      truth = None
    return stream.VideoJob(path, true_label=truth and truth[0], true_window=truth and truth[1])

  predicted = done = 0
  timing = stream.StreamTiming()
  prefetch = stream.DEFAULT_PREFETCH if args.prefetch is None else args.prefetch
  bar = tqdm(total=len(videos), desc="predict", unit=" video", file=sys.stderr,
             disable=True if args.quiet or len(videos) == 1 else None)  # None: off unless stderr is a terminal
  predictions = stream.predict_stream(predictor, map(job, videos), aligned=args.aligned,
                                      keep_faces=folder is not None, prefetch=prefetch,
                                      everyone=args.faces == "all", timing=timing)
  rows = None if args.timeline is None else timeline.TimelineWriter(Path(args.timeline).expanduser(),
                                                                    predictor.class_names)
  paths = {os.fspath(path): path for path in videos}
  try:
    for prediction in predictions:
      predicted += prediction.ok
      bar.write(json.dumps(prediction.to_json()) if args.json else prediction.summary(), file=sys.stdout)
      name = names[paths[prediction.video]]
      if folder is not None:
        folder.add(prediction, name=name if prediction.person is None else f"{name}_person{prediction.person}")
      if rows is not None:
        rows.write(timeline.rows_of(prediction))
      if prediction.person in (None, 0):  # a video's first record
        done += 1
        bar.update(1)
  except KeyboardInterrupt:
    predictions.close()
    bar.close()
    if rows is not None:
      rows.close()
    print(f"videmo predict: interrupted after {done} of {len(videos)} videos", file=sys.stderr)
    if folder is not None and folder.entries:
      print(f"videmo predict: wrote {folder.finish(note=f'model: {predictor.checkpoint} (interrupted)')}",
            file=sys.stderr)
    return 130
  bar.close()
  if rows is not None:
    rows.close()
    if not args.quiet:
      print(f"videmo predict: wrote {rows.rows_written} timeline rows to {rows.path}", file=sys.stderr)
  if folder is not None:
    index = folder.finish(note=f"model: {predictor.checkpoint}")
    if not args.quiet:
      print(f"videmo predict: wrote {index}", file=sys.stderr)
  if args.timing:
    print(timing.summary(), file=sys.stderr)
  return 0 if predicted else 1
