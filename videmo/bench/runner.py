"""One benchmark run: build and time the train step, count its FLOPs, and measure around it.

In order (each later part leaves the earlier figures untouched):
1. compile the step (`harness.build_step`; compile time), run it once (warm-up), record
   peak memory (before PyTorch or the input pipeline run in this process);
2. with PyTorch: one step of the yardstick from the same weights on the same batch, compared
   with the JAX step's first (loss, gradient norm, update), then `repeats` interleaved
   pairs JAX, PyTorch; without: `repeats` JAX steps;
3. the peak FLOP/s for MFU, the breakdown, a profile of a few steps, the input pipeline, the
   largest batch (as asked).
"""

from __future__ import annotations

import dataclasses
import gc
import os
import platform
from typing import Any

import jax
import ml_collections

from videmo.bench import flops as flops_lib
from videmo.bench import harness, max_batch, peaks, timing
from videmo.bench import torch_yardstick
from videmo.ops import conv as conv_ops
from videmo.ops import native_build

TORCH_COMPILE_WARMUP = 5  # extra untimed PyTorch steps with --torch-compile


@dataclasses.dataclass
class Options:
  repeats: int = 5
  peak: str | float | None = "measure"
  torch: bool = True
  torch_channels_last: bool = True
  torch_compile: bool = False
  breakdown: bool = False
  pipeline: bool = True
  pipeline_batches: int = 10
  find_max_batch: bool = False
  max_batch: int | None = None
  profile_dir: str | None = None
  profile_steps: int = 3


def machine() -> dict[str, Any]:
  device = jax.devices()[0]
  model = platform.processor() or platform.machine()
  try:
    with open("/proc/cpuinfo") as f:
      model = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
  except (OSError, StopIteration):
    pass
  cores = os.cpu_count()
  if device.platform == "cpu":
    simulated = f", {jax.device_count()} simulated devices" if jax.device_count() > 1 else ""
    description = f"{model}, {cores} cores (JAX CPU{simulated})"
  else:
    description = f"{jax.device_count()} x {device.device_kind} ({device.platform}); host {model}, {cores} cores"
  return dict(description=description, platform=device.platform, device_kind=device.device_kind,
              devices=jax.device_count(), cpu=model, cores=cores, jax=jax.__version__,
              xla_flags=os.environ.get("XLA_FLAGS", ""))


def conv_path(conv_impl: str, dtype: str, layers: dict[str, int] | None = None) -> dict[str, Any]:
  """Which convolutions the trunk ran, for its dtype.

  dict(impl=the config's, dtype, path='onednn' | 'xla' | 'mixed', layers={path: layers traced},
  why_xla=why XLA's where oneDNN was not used (None otherwise), onednn=version). `layers`:
  the difference of `conv_ops.traced_paths()[dtype]` over building the step; without it, the
  dtype's path as a whole.
  """
  whole = conv_ops.resolve(conv_impl, dtype)
  layers = {k: v for k, v in (layers or {}).items() if v} or {whole: 1}
  path = next(iter(layers)) if len(layers) == 1 else "mixed"
  why = None
  if path != "onednn":
    why = ("model.conv_impl='xla'" if conv_impl == "xla" else conv_ops.auto_skip_reason(dtype)
           or "oneDNN refuses some of these layers' shapes (see the warning above)")
  return dict(impl=conv_impl, dtype=dtype, path=path, layers=layers, why_xla=why,
              onednn=native_build.onednn_version() if "onednn" in layers else None)


def describe_model(model: Any) -> str:
  trunk = "VGG16" if model.trunk_width_divisor == 1 else f"VGG16 width/{model.trunk_width_divisor}"
  spatial = {"attention": f"SA({model.num_heads}, U={model.attention_hidden})",
             "shift": f"SHIFT({model.num_heads})", "average": "no attention"}[model.spatial]
  temporal = {"softmax": "TP", "average": "AVG", "mean_score": "mean-score", "max": "MAX",
              "lstm": "LSTM"}[model.temporal]
  return f"{trunk} + {spatial} + {temporal}, {model.num_classes} classes"


def _torch_part(bench: harness.StepBench, options: Options, params_before, params_after,
                first_metrics) -> tuple[dict, Any]:
  """(torch results or dict(skipped=...), TorchStep or None)."""
  if not options.torch:
    return dict(skipped="not run (--no-torch)"), None
  if not torch_yardstick.available():
    return dict(skipped=torch_yardstick.INSTALL_HINT), None
  try:
    torch_yardstick.check_supported(bench.config.model)
  except ValueError as err:
    return dict(skipped=str(err)), None
  platform_ = jax.devices()[0].platform
  import torch

  device = "cpu" if platform_ == "cpu" else ("cuda" if platform_ == "gpu" and torch.cuda.is_available() else None)
  if device is None:
    return dict(skipped=f"no PyTorch device for JAX's {platform_} (PyTorch {torch.__version__})"), None
  step = torch_yardstick.TorchStep(
      bench.config, params_before, jax.device_get(bench.batch), bench.convention,
      channels_last=options.torch_channels_last, bf16=bench.config.model.dtype == "bfloat16",
      compile=options.torch_compile, device=device)
  check = torch_yardstick.check_against_jax(step, params_before, params_after, first_metrics)
  mode = ", ".join([device, "channels_last" if options.torch_channels_last else "contiguous (NCHW)",
                    "bf16 autocast" if step.bf16 else "float32",
                    "torch.compile" if options.torch_compile else "eager"])
  return dict(version=torch.__version__, mode=mode, check=check), step


def run(config: ml_collections.ConfigDict, config_name: str, options: Options) -> dict[str, Any]:
  """Measure everything for a `harness.bench_config` config; returns the results dict."""
  dtype = config.model.dtype
  traced_before = dict(conv_ops.traced_paths().get(dtype, {}))
  bench = harness.build_step(config)
  traced = {path: n - traced_before.get(path, 0) for path, n in conv_ops.traced_paths().get(dtype, {}).items()}
  clips, frames, size = bench.sizes
  params_before = jax.device_get(bench.state.params)
  first_metrics = jax.device_get(bench.run())
  params_after = jax.device_get(bench.state.params) if options.torch else None
  device = jax.devices()[0]
  peak_bytes, memory_source = timing.peak_memory(device)

  torch_results, torch_step = _torch_part(bench, options, params_before, params_after, first_metrics)
  del params_before, params_after
  if torch_step is not None:
    # torch.compile keeps compiling over its first few steps (measured: 4 on CPU); run them untimed.
    for _ in range(TORCH_COMPILE_WARMUP if options.torch_compile else 0):
      torch_step.step()
    jax_times, torch_times = timing.interleaved(bench.run, torch_step.step, options.repeats)
    ratios = [a / b for a, b in zip(jax_times, torch_times)]
    torch_results.update(times_s=torch_times, median_s=timing.median(torch_times), ratios=ratios,
                         median_ratio=timing.median(ratios))
    del torch_step
    gc.collect()
  else:
    jax_times = timing.time_calls(bench.run, options.repeats)
  step_s = timing.median(jax_times)

  model_fields = dict(config.model.to_dict())
  counts = flops_lib.train_step_flops(model_fields, clips, frames, size, size)
  conv = conv_path(config.model.conv_impl, dtype, traced)
  # oneDNN's convolutions (CPU) and cuDNN's (GPU, where XLA lowers its own convolutions to them)
  # are custom calls, whose FLOPs XLA's cost analysis cannot count.
  xla_uncounted = ("oneDNN's convolutions are custom calls it does not count" if conv["path"] != "xla" else
                   f"on {device.platform} XLA's convolutions are library calls it does not count"
                   if device.platform != "cpu" else None)
  xla = flops_lib.xla_flops(bench.compiled) if xla_uncounted is None else None
  if options.peak == "measure":
    peak = dict(tflops=peaks.measure_matmul_tflops(dtype, list(bench.mesh.devices.flat)),
                source=f"measured {dtype} matmul rate of this {device.platform}")
  elif options.peak is None:
    peak = dict(tflops=None, source="none")
  else:
    peak = dict(tflops=float(options.peak), source="given with --peak-tflops")
  model_rate = counts["train"] / step_s
  results: dict[str, Any] = dict(
      config=config_name, machine=machine(),
      model=dict(description=describe_model(bench.model), dtype=dtype, remat=bool(config.model.remat),
                 fields=model_fields, conv=conv),
      batch=dict(clips=clips, frames=frames, size=size),
      step=dict(median_s=step_s, times_s=jax_times, clips_per_s=clips / step_s,
                frames_per_s=clips * frames / step_s, compile_s=bench.compile_seconds,
                first_loss=float(first_metrics["loss"])),
      flops=dict(model_train=counts["train"], model_forward=counts["forward"], xla=xla, xla_uncounted=xla_uncounted,
                 model_flops_per_s=model_rate, xla_flops_per_s=xla / step_s if xla else None),
      peak=peak, mfu=model_rate / (peak["tflops"] * 1e12) if peak["tflops"] else None,
      memory=dict(peak_bytes=peak_bytes, source=memory_source,
                  xla_planned_bytes=timing.compiled_memory(bench.compiled)),
      torch=torch_results)

  if options.breakdown:
    from videmo.bench import breakdown

    results["breakdown"] = breakdown.breakdown(bench, options.repeats, step_s)
  if options.profile_dir:
    from videmo.bench import profile

    results["profile"] = profile.trace_steps(bench.run, options.profile_steps, options.profile_dir, step_s)
  del bench
  gc.collect()
  if options.pipeline:
    from videmo.bench import input_speed

    results["pipeline"] = input_speed.pipeline_speed(config, options.pipeline_batches)
  if options.find_max_batch:
    results["max_batch"] = find_max_batch(config, clips, options.max_batch)
  return results


def find_max_batch(config: ml_collections.ConfigDict, start: int, cap: int | None) -> dict[str, Any]:
  """The largest batch (clips) whose step compiles and runs; see `max_batch`."""
  device = jax.devices()[0]
  cap = cap or max_batch.default_cap(device.platform)
  unit = jax.device_count() if not config.num_devices else config.num_devices
  cap = max(unit, cap // unit * unit)
  start = min(max(unit, start // unit * unit), cap)
  budget = max_batch.cpu_budget() if device.platform == "cpu" else None

  def fits(batch: int) -> bool:
    bench = None
    try:
      bench = harness.build_step(harness.bench_config(config, batch_size=batch))
      planned = timing.compiled_memory(bench.compiled)
      if budget is not None and planned is not None and planned > budget:
        return False
      bench.run()
      return True
    except Exception as err:  # only running out of memory means "does not fit"
      if max_batch.is_out_of_memory(err):
        return False
      raise
    finally:
      del bench
      gc.collect()  # free this candidate's buffers before the next one allocates

  good, tried = max_batch.search(fits, min(start, cap), unit, max(cap, unit))
  return dict(max_batch=good, tried=tried, cap=cap,
              cpu_budget_bytes=budget)
