"""`videmo demo`: one forward pass of the whole model on a SynthEmo clip, printing its outputs.

    videmo demo                 narrow trunk, 16 frames of 64x64 (a second on a laptop)
    videmo demo --full          the real VGG16 trunk on 224x224 faces (randomly initialised)

It shows the shapes that flow through the network (frames -> conv5_3 map -> attention ->
frame scores -> pooled prediction) and the frame importance p(f|S). The model is untrained,
so the prediction is noise; `videmo train --config=configs/synthemo.py` trains one.
"""

from __future__ import annotations

import argparse

import numpy as np


def main(argv: list[str]) -> int:
  parser = argparse.ArgumentParser(prog="videmo demo", description=__doc__.split("\n\n")[0])
  parser.add_argument("--full", action="store_true", help="full-width VGG16 at 224x224 instead of the narrow trunk")
  parser.add_argument("--frames", type=int, default=16, help="frames in the clip (default 16)")
  parser.add_argument("--label", default="Happy", help="the clip's expression (an AFEW emotion name)")
  parser.add_argument("--seed", type=int, default=0)
  args = parser.parse_args(argv)

  import jax

  from videmo.data.schema import AFEW_EMOTIONS
  from videmo.data.synthemo.render import render_clip
  from videmo.models.input_convention import IMAGENET_CONVENTION
  from videmo.models.video import build_model

  if args.label not in AFEW_EMOTIONS:
    parser.error(f"--label must be one of {', '.join(AFEW_EMOTIONS)}, got {args.label!r}")
  size = 224 if args.full else 64
  clip = render_clip(args.seed, args.frames, size, AFEW_EMOTIONS.index(args.label))
  # A randomly initialised trunk takes unit-scale inputs (as training from scratch does).
  frames = IMAGENET_CONVENTION.normalize(clip["frames"][None])  # [1, F, S, S, 3]
  model = build_model(dict(trunk_width_divisor=1 if args.full else 8, num_heads=2,
                           attention_hidden=64 if args.full else 16))
  mask = np.ones(frames.shape[:2], bool)
  params = jax.jit(model.init)(jax.random.key(args.seed), frames, mask)
  out = jax.jit(model.apply)(params, frames, mask)
  count = sum(x.size for x in jax.tree.leaves(params))

  grid = size // 16
  print(f"model: VGG16{'' if args.full else ' (narrow, width/8)'} + spatial attention (2 heads) + "
        f"temporal softmax pooling; {count:,} parameters")
  print(f"input frames        {tuple(frames.shape)}  (a SynthEmo '{args.label}' clip)")
  print(f"conv5_3 map         (B·F, {grid}, {grid}, D) -> L = {grid * grid} local descriptors per frame")
  for key in ("attention", "frame_scores", "log_probs", "frame_importance", "penalty"):
    print(f"{key:<19} {tuple(out[key].shape)}")
  importance = np.asarray(out["frame_importance"][0])
  print("frame importance p(f|S):", np.array2string(importance, precision=3, max_line_width=100))
  print(f"expressive window (ground truth): frames {clip['window'][0]}..{clip['window'][1] - 1}")
  probs = np.exp(np.asarray(out["log_probs"][0]))
  print("p(c|S) (untrained):", ", ".join(f"{n} {p:.2f}" for n, p in zip(AFEW_EMOTIONS, probs)))
  return 0
