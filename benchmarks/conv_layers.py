"""Each VGG16 convolution alone: videmo's oneDNN op against PyTorch's conv2d, in the same process.

    python benchmarks/conv_layers.py                      # full width, 32 frames at 112x112 (docs/benchmarks.md)
    python benchmarks/conv_layers.py --frames 128 --size 64 --width-divisor 8   # the SynthEmo trunk

For each distinct layer shape of VGG16 (3x3, stride 1, 'SAME'; conv1_1 to conv5_x), three
directions, each jitted alone (JAX) or run eagerly (PyTorch, channels_last, as `videmo bench`
runs it), median of `--repeats` after one warm-up, the two frameworks alternating layer by
layer: the forward pass, the gradient of the input and the gradient of the weights. PyTorch's
two gradients are timed as (forward + that gradient) - forward, since autograd runs them after
a forward pass. Times in ms; the last line sums them over the table's layers (each distinct
shape once: VGG16 repeats conv3_2, conv4_2 and conv5_1 two or three times).

Needs PyTorch (`pip install -e ".[bench]"`) and the oneDNN op (videmo/ops).
"""

from __future__ import annotations

import argparse
import os
import statistics

os.environ.setdefault("XLA_FLAGS", "--xla_cpu_experimental_ynn_fusion_type=-individual_convolution")

import jax  # noqa: E402
import numpy as np  # noqa: E402

# (spatial size as a fraction of the input, input channels, output channels) of VGG16's distinct layers
VGG16_LAYERS = ((1, 3, 64), (1, 64, 64), (2, 64, 128), (2, 128, 128), (4, 128, 256), (4, 256, 256),
                (8, 256, 512), (8, 512, 512), (16, 512, 512))


def _median_ms(run, repeats: int) -> float:
  from videmo.bench import timing

  return statistics.median(timing.time_calls(run, repeats)) * 1e3


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--frames", type=int, default=32)
  parser.add_argument("--size", type=int, default=112)
  parser.add_argument("--width-divisor", type=int, default=1)
  parser.add_argument("--repeats", type=int, default=5)
  args = parser.parse_args()

  import torch

  from videmo.bench import runner
  from videmo import process_setup
  from videmo.ops import onednn_conv

  process_setup.reuse_freed_buffers()  # as `videmo bench` runs (before JAX starts its threads)
  torch.set_num_threads(os.cpu_count() or 1)
  print(f"# {runner.machine()['description']}; jax {jax.__version__}, torch {torch.__version__}; "
        f"{args.frames} frames at {args.size}x{args.size}, width / {args.width_divisor}")
  print(f"{'layer':>22}  {'oneDNN op: fwd':>14} {'d input':>8} {'d weights':>9}   {'PyTorch: fwd':>12} {'d input':>8} "
        f"{'d weights':>9}")
  fwd = jax.jit(onednn_conv.conv2d)
  d_input = jax.jit(lambda x, w, dy: jax.vjp(lambda x: onednn_conv.conv2d(x, w), x)[1](dy)[0])
  d_weights = jax.jit(lambda x, w, dy: jax.vjp(lambda w: onednn_conv.conv2d(x, w), w)[1](dy)[0])
  rng = np.random.default_rng(0)
  totals = np.zeros(6)
  for fraction, c_in, c_out in VGG16_LAYERS:
    size = args.size // fraction
    c_in = c_in if c_in == 3 else c_in // args.width_divisor
    c_out //= args.width_divisor
    x = rng.standard_normal((args.frames, size, size, c_in), np.float32)
    w = rng.standard_normal((3, 3, c_in, c_out), np.float32) * 0.1
    dy = rng.standard_normal((args.frames, size, size, c_out), np.float32)
    jx, jw, jdy = (jax.device_put(a) for a in (x, w, dy))
    ours = [_median_ms(lambda: fwd(jx, jw).block_until_ready(), args.repeats),
            _median_ms(lambda: d_input(jx, jw, jdy).block_until_ready(), args.repeats),
            _median_ms(lambda: d_weights(jx, jw, jdy).block_until_ready(), args.repeats)]
    tx = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous(memory_format=torch.channels_last)
    tw = torch.from_numpy(w).permute(3, 2, 0, 1).contiguous()
    tdy = torch.from_numpy(dy).permute(0, 3, 1, 2).contiguous(memory_format=torch.channels_last)
    conv = torch.nn.functional.conv2d

    def forward():
      with torch.no_grad():
        conv(tx, tw, padding=1)

    def with_input_gradient():
      x_ = tx.detach().requires_grad_(True)
      torch.autograd.grad(conv(x_, tw, padding=1), x_, tdy)

    def with_weight_gradient():
      w_ = tw.detach().requires_grad_(True)
      torch.autograd.grad(conv(tx, w_, padding=1), w_, tdy)

    forward_ms = _median_ms(forward, args.repeats)
    theirs = [forward_ms, _median_ms(with_input_gradient, args.repeats) - forward_ms,
              _median_ms(with_weight_gradient, args.repeats) - forward_ms]
    totals += ours + theirs
    name = f"{size}x{size}, {c_in}->{c_out}"
    print(f"{name:>22}  {ours[0]:14.1f} {ours[1]:8.1f} {ours[2]:9.1f}   {theirs[0]:12.1f} {theirs[1]:8.1f} {theirs[2]:9.1f}",
          flush=True)
  print(f"{'sum':>22}  {totals[0]:14.1f} {totals[1]:8.1f} {totals[2]:9.1f}   {totals[3]:12.1f} {totals[4]:8.1f} "
        f"{totals[5]:9.1f}   (oneDNN op / PyTorch: {totals[:3].sum() / totals[3:].sum():.3f})")


if __name__ == "__main__":
  main()
