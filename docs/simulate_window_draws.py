"""How many expressive frames a training draw of synthemo/tables shows: a simulation of the
generator and the input pipeline's frame sampler (the figure quoted in docs/synthemo.md).

    python docs/simulate_window_draws.py        # prints the distribution over 200 draws per clip

Every non-Neutral training clip is rendered as the builder renders it (its expressive frames
are those with intensity > 0), and 16 frames are drawn from it as `pipeline.train_batches` does
(`sample_train_indices`), 200 times per clip.
"""

import numpy as np

from videmo.data.loading import pipeline
from videmo.data.preparation.builders.synthemo import synthemo_dataset_builder as builder
from videmo.data.synthemo import render

NEUTRAL = render.AFEW_EMOTIONS.index("Neutral")


def main(config_name: str = "tables", frames: int = 16, draws: int = 200, seed: int = 0) -> None:
  config = next(c for c in builder.Builder.BUILDER_CONFIGS if c.name == config_name)
  rng = np.random.default_rng(seed)
  counts = []
  for job in builder.clip_jobs(config, "train"):
    if job.label == NEUTRAL:
      continue
    expressive = np.asarray(render.render_job(job)["intensity"]) > 0
    counts += [int(expressive[pipeline.sample_train_indices(len(expressive), frames, rng)].sum())
               for _ in range(draws)]
  counts = np.asarray(counts)
  print(f"synthemo/{config_name}, {frames} frames per draw, {counts.size} draws: expressive frames "
        f"mean {counts.mean():.2f}, median {np.median(counts):.0f}, 5-95% {np.percentile(counts, 5):.0f}-"
        f"{np.percentile(counts, 95):.0f}, max {counts.max()}; none in {100 * np.mean(counts == 0):.1f}% of draws")


if __name__ == "__main__":
  main()
