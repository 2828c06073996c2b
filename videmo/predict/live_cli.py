"""`videmo predict --stream SOURCE`: the command's live-stream half (its flags are in cli.py).

    ffmpeg -f v4l2 -i /dev/video0 -f mpegts - | videmo predict --stream - --checkpoint runs/synthemo
    videmo predict --stream udp://127.0.0.1:5000 --checkpoint runs/synthemo --json --timeline live.csv
    videmo predict --stream recording.ts --checkpoint runs/synthemo --every 2   # a file still being written

Prints a line (--json: a JSON object) per person every --every seconds of stream time, for the
last --window_seconds (videmo/predict/live.py); notes and the closing summary go to stderr.
Exit status 0 when the stream ends or on Ctrl-C or SIGTERM (after a final prediction of the
last window); 1 when the source cannot be opened or gives no frame, or the model cannot be loaded.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path

# File-mode flags that mean nothing for a stream, with the value that says they were not given.
_FILE_ONLY = {"report": None, "frames": None, "prefetch": None, "timing": False}


def check_args(args: argparse.Namespace) -> None:
  """SystemExit with one line naming the first flag that is wrong for a stream."""
  if args.stream is None and args.video is None:
    raise SystemExit("videmo predict: give VIDEO_OR_FOLDER, or --stream SOURCE for a live stream")
  if args.stream is not None and args.video is not None:
    raise SystemExit(f"videmo predict: give VIDEO_OR_FOLDER ({args.video}) or --stream SOURCE, not both")
  for flag in ("window_seconds", "every", "idle_seconds"):
    if not getattr(args, flag) > 0:
      raise SystemExit(f"videmo predict: --{flag} must be > 0 seconds, got {getattr(args, flag)}")
  for flag in ("queue_frames", "batch_frames"):
    if getattr(args, flag) < 1:
      raise SystemExit(f"videmo predict: --{flag} must be >= 1, got {getattr(args, flag)}")
  if args.max_frames is not None and args.max_frames < 1:
    raise SystemExit(f"videmo predict: --max_frames must be >= 1, got {args.max_frames}")
  if args.max_seconds is not None and not args.max_seconds > 0:
    raise SystemExit(f"videmo predict: --max_seconds must be > 0, got {args.max_seconds}")
  for flag, unset in _FILE_ONLY.items():
    if getattr(args, flag, unset) != unset:
      raise SystemExit(f"videmo predict: --{flag} applies to videos and folders, not to --stream")
  if getattr(args, "timeline", None) is not None:
    from videmo.predict import timeline

    try:
      timeline.check_path(Path(args.timeline).expanduser())
    except ValueError as err:
      raise SystemExit(f"videmo predict: {err}") from None
  from videmo.predict import live_source

  try:
    live_source.check_source(args.stream)
  except live_source.SourceError as err:
    raise SystemExit(f"videmo predict: {err}") from None


def main(args: argparse.Namespace) -> int:
  check_args(args)
  from videmo.predict import live, live_source
  from videmo.predict.predictor import Predictor
  from videmo.predict.timeline import TimelineWriter

  try:
    predictor = Predictor(args.checkpoint, batch_frames=min(args.batch_frames, args.queue_frames))
  except (FileNotFoundError, ValueError) as err:
    print(f"videmo predict: {err}", file=sys.stderr)
    return 1
  if predictor.synthetic_training and not args.quiet:
    from videmo.predict.record import SYNTHETIC_NOTICE

    print(f"videmo predict: note: {SYNTHETIC_NOTICE.format(dataset=predictor.trained_on)}", file=sys.stderr)
  options = live.StreamOptions(window_seconds=args.window_seconds, every_seconds=args.every,
                               idle_seconds=args.idle_seconds, queue_frames=args.queue_frames, aligned=args.aligned,
                               max_frames=args.max_frames, max_seconds=args.max_seconds)

  def emit(prediction) -> None:
    print(json.dumps(prediction.to_json()) if args.json else prediction.summary(), flush=True)

  def ready() -> None:
    if not args.quiet:
      print(f"videmo predict: reading {args.stream} (a prediction of the last {args.window_seconds:g} s every "
            f"{args.every:g} s; Ctrl-C ends it)", file=sys.stderr, flush=True)

  def terminate(signum, frame) -> None:  # a service manager's stop ends the stream as Ctrl-C does
    raise KeyboardInterrupt

  timeline_path = getattr(args, "timeline", None)
  writer = TimelineWriter(Path(timeline_path).expanduser(), predictor.class_names) if timeline_path else None
  previous = signal.signal(signal.SIGTERM, terminate)
  # SIGINT ends the stream even where it was inherited ignored (a job started in the background
  # by a script, which is how services and CI start processes): `kill -INT` must still stop it.
  previous_int = signal.signal(signal.SIGINT, signal.default_int_handler)
  try:
    summary = live.predict_live(predictor, args.stream, options, emit=emit, timeline=writer, on_ready=ready)
  except live_source.SourceError as err:
    print(f"videmo predict: {err}", file=sys.stderr)
    return 1
  except KeyboardInterrupt:  # before the stream started, or a second Ctrl-C while ending it
    print("videmo predict: interrupted", file=sys.stderr)
    return 130
  finally:
    signal.signal(signal.SIGTERM, previous)
    signal.signal(signal.SIGINT, previous_int)
    if writer is not None:
      writer.close()
  if not summary.decoded:
    print(f"videmo predict: --stream {args.stream}: no frame could be decoded ({summary.ended})", file=sys.stderr)
    return 1
  if not args.quiet:
    print(f"videmo predict: {summary.line()}", file=sys.stderr)
    if writer is not None:
      print(f"videmo predict: wrote {writer.rows_written} rows to {writer.path}", file=sys.stderr)
  return 0
