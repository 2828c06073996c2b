"""The peak FLOP/s that MFU is measured against: given, measured on this device, or none.

`--peak-tflops` takes
  measure   (default) the rate of large square matrix products in the step's compute dtype
            on this device (float32 or bfloat16 operands; 10 products of n = 8192 per timed
            call on an accelerator, one of n = 2048 on CPU; median of 5): a peak this machine
            really reaches, the same way on CPU, GPU and TPU. A datasheet peak is higher
            (e.g. dense bfloat16 tensor-core figures); pass it as a number to measure MFU against it instead.
  NUMBER    a peak in TFLOP/s for the whole set of devices the step runs on
  none      no peak: MFU is reported as n/a
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from videmo.bench import timing


def parse_peak(value: str) -> str | float | None:
  """'measure', a positive number of TFLOP/s, or None for 'none'; raises ValueError otherwise."""
  text = value.strip().lower()
  if text == "measure":
    return "measure"
  if text in ("none", "n/a"):
    return None
  try:
    number = float(text)
  except ValueError:
    number = -1.0
  if not number > 0:
    raise ValueError(f"--peak-tflops must be 'measure', 'none' or a positive number of TFLOP/s, got {value!r}")
  return number


def measure_matmul_tflops(dtype: str, devices: list, size: int | None = None, repeats: int = 5,
                          chain: int | None = None) -> float:
  """Measured TFLOP/s of n×n×n matrix products in `dtype`, times the number of devices used.

  One timed call runs `chain` products in a row inside one program (x <- x·B, B scaled by
  1/sqrt(n) so that x keeps its size): on an accelerator one product of n = 8192 takes about
  a millisecond, too short to time alone from the host. Defaults: n = 8192 and 10 products on
  an accelerator, n = 2048 and 1 product on CPU.
  """
  device = devices[0]
  cpu = device.platform == "cpu"
  size = size or (2048 if cpu else 8192)
  chain = chain or (1 if cpu else 10)
  key_a, key_b = jax.random.split(jax.random.key(0))
  a = jax.device_put(jax.random.normal(key_a, (size, size), jnp.dtype(dtype)), device)
  b = jax.device_put((jax.random.normal(key_b, (size, size), jnp.float32) / size ** 0.5).astype(dtype), device)

  @jax.jit
  def products(x, y):
    for _ in range(chain):
      x = x @ y
    return x

  seconds = timing.median(timing.time_calls(lambda: products(a, b).block_until_ready(), repeats, warmup=2))
  # On CPU every "device" of the mesh shares the same cores: the machine's peak is one product's.
  return 2 * size ** 3 * chain / seconds / 1e12 * (1 if cpu else len(devices))
