"""`videmo render-clip`: one SynthEmo clip as a video file, with its ground truth next to it.

    videmo render-clip happy.mp4 --label Happy --seed 3 [--size 64 --frames 48 --fps 25]
    videmo predict happy.mp4 --checkpoint runs/synthemo --aligned --report report/

writes happy.mp4 (H.264, yuv420p, near-lossless: crf 8, so the few-pixel expressions of a
64x64 face survive) and happy.json:

  label, label_index, classes   the clip's emotion and AFEW's class names
  seed, size, num_frames, fps   how it was rendered (`render.render_clip(seed, num_frames, size, label)`)
  intensity [F]                 the expression's intensity per frame, 0..1 (1 at the apex)
  window [2], apex              frames start..stop-1 show the emotion; a frame of maximal intensity
                                (Neutral: window [0, 0], apex -1)

The frames are the whole rendered face (SynthEmo has no background beyond the face's
frame), so a SynthEmo-trained model reads them with `--aligned`. `videmo predict` finds
happy.json next to happy.mp4 (`ground_truth_beside`) and reports its label and window as the
ground truth: the figure shades the expressive window and index.html marks right and wrong.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from videmo.data.synthemo import render
from videmo.data import video_io
from videmo.data.schema import AFEW_EMOTIONS

CRF = 8  # H.264 quality: visually lossless at 64x64


def write_clip(path: str | os.PathLike, label: str, seed: int = 0, size: int = 64, num_frames: int = 48,
               fps: float = 25.0) -> dict:
  """Render a SynthEmo clip and write it to `path` (.mp4, .mkv or .mov: H.264) plus `path`.json.

  Returns the ground-truth record written to the .json (see the module docstring).
  """
  path = Path(path)
  if label not in AFEW_EMOTIONS:
    raise ValueError(f"--label must be one of {', '.join(AFEW_EMOTIONS)}, got {label!r}")
  if size % 2:
    raise ValueError(f"--size must be even (H.264 in yuv420p halves the colour planes), got {size}")
  if path.suffix.lower() not in (".mp4", ".mkv", ".mov"):
    raise ValueError(f"{path}: the output must be .mp4, .mkv or .mov (H.264)")
  if fps <= 0:
    raise ValueError(f"--fps must be > 0, got {fps}")
  clip = render.render_clip(seed, num_frames, size, AFEW_EMOTIONS.index(label))
  path.parent.mkdir(parents=True, exist_ok=True)
  video_io.write_video(path, clip["frames"], fps=fps, crf=CRF)
  truth = dict(label=label, label_index=AFEW_EMOTIONS.index(label), classes=list(AFEW_EMOTIONS), seed=seed,
               size=size, num_frames=num_frames, fps=fps, intensity=[round(float(v), 6) for v in clip["intensity"]],
               window=[int(v) for v in clip["window"]], apex=int(clip["apex"]))
  path.with_suffix(".json").write_text(json.dumps(truth, indent=2))
  return truth


def main(argv: list[str]) -> int:
  parser = argparse.ArgumentParser(prog="videmo render-clip", description=__doc__.split("\n\n")[0])
  parser.add_argument("output", metavar="OUT.mp4",
                      help="the video to write (.mp4, .mkv or .mov); OUT.json goes next to it")
  parser.add_argument("--label", default="Happy", help=f"the emotion: one of {', '.join(AFEW_EMOTIONS)}")
  parser.add_argument("--seed", type=int, default=0, help="which clip (identity, motion, timing)")
  parser.add_argument("--size", type=int, default=64, help="frame side in pixels, even, >= 32 (default 64)")
  parser.add_argument("--frames", type=int, default=48, help="number of frames (default 48)")
  parser.add_argument("--fps", type=float, default=25.0, help="frame rate written in the file (default 25)")
  args = parser.parse_args(argv)
  try:
    truth = write_clip(args.output, args.label, args.seed, args.size, args.frames, args.fps)
  except ValueError as err:
    parser.error(str(err))
  start, stop = truth["window"]
  shown = f"frames {start}..{stop - 1} (apex {truth['apex']})" if stop > start else "none (Neutral)"
  print(f"wrote {args.output} and {Path(args.output).with_suffix('.json')}: {args.label}, "
        f"{args.frames} frames of {args.size}x{args.size}; expressive window: {shown}")
  return 0


def ground_truth_beside(video: str | os.PathLike) -> tuple[str, tuple[int, int]] | None:
  """(label, window) from the VIDEO.json that `write_clip` put next to VIDEO; None when there is
  no such file or it is not one of these records (any other .json is left alone)."""
  path = Path(video).with_suffix(".json")
  if Path(video).suffix.lower() == ".json" or not path.is_file():
    return None
  try:
    truth = json.loads(path.read_text())
    label, window = truth["label"], truth["window"]
    start, stop = (int(v) for v in window)
  except (OSError, ValueError, TypeError, KeyError):
    return None
  if not isinstance(label, str) or label not in truth.get("classes", AFEW_EMOTIONS) or not 0 <= start <= stop:
    return None
  return label, (start, stop)
