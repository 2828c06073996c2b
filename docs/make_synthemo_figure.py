"""Draws docs/synthemo.png: a few SynthEmo clips, their frames over time and intensity curves.

    python docs/make_synthemo_figure.py [--out docs/synthemo.png]

Each row is one clip of the default config (seed 0, train split) as the builder renders it
before JPEG: eight frames spread over the clip (the expressive ones framed in red), the
expressive regions of the apex frame (green: the ground-truth mask), the pixels the emotion
changes there (|apex - same frame rendered neutral|, brightened), and the intensity curve.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from videmo.data.synthemo import render  # noqa: E402
from videmo.data.schema import AFEW_EMOTIONS  # noqa: E402

SHOWN_CLASSES = ("Happy", "Surprise", "Sad", "Angry", "Neutral")


def pick_clips(seed: int, classes: tuple[str, ...], num_clips: int = 773) -> list[int]:
  """Index of the first train clip of each class in `classes`, default config."""
  labels = render.split_labels(seed, "train", num_clips)
  return [int(np.flatnonzero(labels == AFEW_EMOTIONS.index(name))[0]) for name in classes]


def draw(out: Path, seed: int = 0, size: int = 256, frames_shown: int = 8) -> None:
  labels = render.split_labels(seed, "train", 773)
  indices = pick_clips(seed, SHOWN_CLASSES)
  cols = frames_shown + 3
  fig = plt.figure(figsize=(1.25 * cols + 1.6, 1.45 * len(indices)), dpi=100)
  grid = fig.add_gridspec(len(indices), cols + 1, width_ratios=[1] * (cols - 1) + [2.6, 0.05],
                          wspace=0.05, hspace=0.38)
  for row, index in enumerate(indices):
    clip = render.generate_clip(seed, "train", index, int(labels[index]), size, 16, 80, with_neutral=True)
    neutral = clip["neutral_frames"]
    frames, intensity, start, stop = clip["frames"], clip["intensity"], *clip["window"]
    shown = np.linspace(0, clip["num_frames"] - 1, frames_shown).round().astype(int)
    if clip["apex"] >= 0:  # make sure the apex is among the shown frames
      shown[np.argmin(np.abs(shown - clip["apex"]))] = clip["apex"]
    for col, f in enumerate(shown):
      ax = fig.add_subplot(grid[row, col])
      ax.imshow(frames[f])
      ax.set_xticks([]), ax.set_yticks([])
      ax.set_title(f"t={f}", fontsize=7, pad=2)
      for spine in ax.spines.values():
        spine.set_color("red" if intensity[f] > 0 else "0.7")
        spine.set_linewidth(2.0 if intensity[f] > 0 else 0.5)
      if col == 0:
        ax.set_ylabel(f"{AFEW_EMOTIONS[clip['label']]}\nclip {index}", fontsize=8)
    apex = max(clip["apex"], 0)
    overlay = frames[apex].astype(np.float32)
    mask = clip["region_mask"][apex]
    overlay[mask] = 0.5 * overlay[mask] + 0.5 * np.float32([0, 255, 0])
    diff = np.abs(frames[apex].astype(np.int32) - neutral[apex].astype(np.int32)).max(-1)
    for col, (image, title) in enumerate([(overlay.astype(np.uint8), "regions (apex)"),
                                          (np.clip(diff * 3, 0, 255).astype(np.uint8), "|apex - neutral|")]):
      ax = fig.add_subplot(grid[row, frames_shown + col])
      ax.imshow(image, cmap="gray", vmin=0, vmax=255)
      ax.set_xticks([]), ax.set_yticks([])
      ax.set_title(title, fontsize=7, pad=2)
    ax = fig.add_subplot(grid[row, cols - 1])
    ax.plot(np.arange(clip["num_frames"]), intensity, color="C3", lw=1.5)
    ax.plot(shown, intensity[shown], "o", color="k", ms=2.5)
    if stop > start:
      ax.axvspan(start - 0.5, stop - 0.5, color="C3", alpha=0.12)
    ax.set_ylim(-0.05, 1.1), ax.set_xlim(-0.5, clip["num_frames"] - 0.5)
    ax.yaxis.tick_right()
    ax.tick_params(labelsize=6)
    ax.set_title(f"intensity ({clip['num_frames']} frames)", fontsize=7, pad=2)
  fig.savefig(out, bbox_inches="tight")
  plt.close(fig)


def main(argv: list[str]) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--out", type=Path, default=Path(__file__).with_name("synthemo.png"))
  parser.add_argument("--seed", type=int, default=0)
  args = parser.parse_args(argv)
  draw(args.out, seed=args.seed)
  print(f"wrote {args.out}")
  return 0


if __name__ == "__main__":
  sys.exit(main(sys.argv[1:]))
