"""Draws where spatial attention looks, per class: each head's mean map over a class's expressive frames.

    # gather the maps of trained runs (their metrics.json, or the newest `videmo eval` record
    # holding them) into a CSV, then draw it:
    python docs/make_attention_maps_figure.py --runs 'SA2 reg0.1=runs/synthemo_evidence/runs/SA2_reg0.1/seed-*' \\
        --csv docs/synthemo_when_where/attention_maps.csv --out docs/synthemo_when_where/attention_maps.png
    # redraw from the committed CSV alone:
    python docs/make_attention_maps_figure.py --csv docs/synthemo_when_where/attention_maps.csv \\
        --out docs/synthemo_when_where/attention_maps.png

A run's `localisation.class_maps` (videmo/train/localisation.py) holds, per class, the mean
attention map of each head over the class's expressive frames and the mean of the class's
region mask on the same grid. Maps are averaged over a row's runs (seeds), each run weighted
equally. The figure has one panel per (row, class, head): the map (brighter = more attention),
upsampled over a neutral SynthEmo face at the model's crop size, with the cells that carry the
class's expression on at least half of its frames outlined in green.
"""

from __future__ import annotations

import argparse
import csv
import glob
import json
import sys
from pathlib import Path

import numpy as np

COLUMNS = ("row", "runs", "class", "frames", "head", "cell", "attention", "mask")


def _class_maps(run: Path) -> tuple[list[str], list[dict]]:
  """(class names, localisation.class_maps) of a run: its metrics.json, else its newest eval record with them."""
  records = [run / "metrics.json", *sorted(run.glob("eval_*.json"), key=lambda p: p.stat().st_mtime, reverse=True)]
  for path in records:
    if path.is_file():
      record = json.loads(path.read_text())
      maps = (record.get("localisation") or {}).get("class_maps")
      if maps:
        return record["classes"], maps
  raise SystemExit(f"make_attention_maps_figure: no localisation class maps in {run} (metrics.json or eval_*.json); "
                   f"run `videmo eval` on it with this version of videmo")


def gather(rows: list[tuple[str, list[Path]]]) -> list[dict]:
  """CSV rows: per (row, class, head, cell), the attention averaged over the row's runs."""
  out = []
  for name, runs in rows:
    if not runs:
      raise SystemExit(f"make_attention_maps_figure: row {name!r} matches no run folder")
    per_class: dict[str, list] = {}
    for run in runs:
      classes, maps = _class_maps(run)
      for entry in maps:
        per_class.setdefault(classes[entry["label"]], []).append(entry)
    for cls, entries in per_class.items():
      heads = np.mean([e["heads"] for e in entries], axis=0)  # [N, L]
      mask = np.mean([e["mask"] for e in entries], axis=0)    # [L]
      frames = sum(e["frames"] for e in entries)
      for h, head in enumerate(heads):
        out += [dict(row=name, runs=len(entries), **{"class": cls}, frames=frames, head=h, cell=c,
                     attention=f"{v:.5f}", mask=f"{m:.5f}") for c, (v, m) in enumerate(zip(head, mask))]
  return out


def read_csv(path: Path) -> list[dict]:
  with open(path) as f:
    return list(csv.DictReader(f))


def write_csv(path: Path, rows: list[dict]) -> None:
  path.parent.mkdir(parents=True, exist_ok=True)
  with open(path, "w", newline="") as f:
    writer = csv.DictWriter(f, fieldnames=COLUMNS)
    writer.writeheader()
    writer.writerows(rows)


def neutral_face(size: int) -> np.ndarray:
  """A neutral SynthEmo face [S, S, 3] uint8 (seed 0, clip 0, first frame, before its window)."""
  from videmo.data.schema import AFEW_EMOTIONS
  from videmo.data.synthemo import render

  clip = render.generate_clip(0, "train", 0, AFEW_EMOTIONS.index("Neutral"), size, 8, 8)
  return clip["frames"][0]


def draw(rows: list[dict], out: Path, crop: int = 64) -> None:
  import matplotlib

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  names = list(dict.fromkeys(r["row"] for r in rows))
  classes = list(dict.fromkeys(r["class"] for r in rows))
  heads = {n: sorted({int(r["head"]) for r in rows if r["row"] == n}) for n in names}
  columns = [(n, h) for n in names for h in heads[n]]
  face = neutral_face(crop).astype(np.float32) / 255
  fig, axes = plt.subplots(len(classes), len(columns), figsize=(1.35 * len(columns) + 1.2, 1.35 * len(classes) + 0.6),
                           squeeze=False)
  for i, cls in enumerate(classes):
    for j, (name, head) in enumerate(columns):
      ax = axes[i, j]
      ax.set_xticks([])
      ax.set_yticks([])
      cells = sorted((int(r["cell"]), float(r["attention"]), float(r["mask"])) for r in rows
                     if r["row"] == name and r["class"] == cls and int(r["head"]) == head)
      if not cells:
        ax.axis("off")
        continue
      g = int(round(np.sqrt(len(cells))))
      attention = np.array([c[1] for c in cells]).reshape(g, g)
      mask = np.array([c[2] for c in cells]).reshape(g, g) >= 0.5
      ax.imshow(face.mean(-1), cmap="gray", extent=(0, g, g, 0), vmin=0, vmax=1)
      ax.imshow(attention, cmap="magma", alpha=0.6, extent=(0, g, g, 0), vmin=0, vmax=max(attention.max(), 1e-6),
                interpolation="nearest")
      for y, x in zip(*np.nonzero(mask)):
        ax.add_patch(plt.Rectangle((x, y), 1, 1, fill=False, edgecolor="lime", linewidth=1.2))
      if i == 0:
        ax.set_title(f"{name}\nhead {head + 1}", fontsize=8)
      if j == 0:
        ax.set_ylabel(cls, fontsize=8)
  fig.suptitle("Each head's mean attention over a class's\nexpressive frames (green: the class's regions)", fontsize=9)
  fig.tight_layout()
  out.parent.mkdir(parents=True, exist_ok=True)
  fig.savefig(out, dpi=100)
  print(f"wrote {out}")


def main(argv: list[str]) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--runs", action="append", default=[],
                      help="NAME=GLOB: a row of the figure and its run folders (repeatable); omit to redraw from --csv")
  parser.add_argument("--csv", type=Path, required=True, help="the maps' CSV (written with --runs, read without)")
  parser.add_argument("--out", type=Path, required=True, help="the figure (.png)")
  parser.add_argument("--crop", type=int, default=64, help="the model's crop size (the face drawn under the maps)")
  args = parser.parse_args(argv)
  if args.runs:
    rows = []
    for spec in args.runs:
      name, sep, pattern = spec.partition("=")
      if not sep:
        parser.error(f"--runs takes NAME=GLOB, got {spec!r}")
      rows.append((name, [Path(p) for p in sorted(glob.glob(pattern)) if Path(p).is_dir()]))
    write_csv(args.csv, gather(rows))
    print(f"wrote {args.csv}")
  elif not args.csv.is_file():
    parser.error(f"no CSV at {args.csv}: give --runs to make it")
  draw(read_csv(args.csv), args.out, args.crop)
  return 0


if __name__ == "__main__":
  sys.exit(main(sys.argv[1:]))
