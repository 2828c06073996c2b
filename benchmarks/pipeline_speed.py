"""The training input pipeline's speed on a built dataset, one measurement per call.

    python benchmarks/pipeline_speed.py --dataset synthemo --data_dir DIR [--workers 2] [--batches 40]

The batches `videmo train` reads (`pipeline.train_batches` through `experiment.train_batch_stream`:
16 random frames per clip, random 224 crop and mirror, 16 clips per batch: the base config's
input settings) from the split's shards, timed by `videmo bench`'s `input_speed.pipeline_speed`:
the first batch (loader start-up) apart, then the rate over the next BATCHES batches, as in a
run's first epoch, which decodes its records. Prints one JSON line. To compare two versions
of the code, run it alternately with each on PYTHONPATH (docs/benchmarks.md).
"""

import argparse
import json

from videmo.bench import input_speed
from videmo.train import base_config


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--dataset", default="synthemo")
  parser.add_argument("--data_dir", default="")
  parser.add_argument("--workers", type=int, default=2)
  parser.add_argument("--batches", type=int, default=40)
  args = parser.parse_args()
  config = base_config.get_config("cpu")
  config.dataset, config.data_dir, config.model.num_classes = args.dataset, args.data_dir, 7
  config.input.workers = args.workers
  result = input_speed.pipeline_speed(config, args.batches)
  print(json.dumps(result))


if __name__ == "__main__":  # loader processes are spawned: they import this file
  main()
