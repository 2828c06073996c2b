"""Benchmarks of the training step: `videmo bench` (cli.py) and its parts.

  harness.py          the train step exactly as `videmo train` builds it, on a synthetic batch
  timing.py           blocking timings, medians, interleaved A/B pairs, peak memory
  flops.py            analytic FLOPs per step (conv trunk, head; 3 x forward) and XLA's count
  peaks.py            the peak FLOP/s for MFU: measured matmul rate, given, or none
  breakdown.py        the step's parts jitted and timed alone
  input_speed.py      the input pipeline's batches/s
  max_batch.py        the largest batch that fits (doubling, then bisection)
  torch_yardstick.py  the same model and step in PyTorch (optional; a yardstick only)
  runner.py           one run: everything above in order -> a results dict
  report.py           the printed table and the JSON file
"""
