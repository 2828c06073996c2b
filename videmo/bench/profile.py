"""Where the step's device time goes, from JAX's profiler: a trace of a few steps, summarised.

`trace_steps(run, steps, directory)` records `steps` calls of `run` with `jax.profiler.trace`
(the trace lands in DIRECTORY/plugins/profile/RUN/HOST.xplane.pb, for TensorBoard's profile
plugin or xprof) and returns `summarise` of it:

  ops           the XLA operations that took the most time, each with its total time per step
                (ms), its share of the op time and how many times it ran per step;
  kinds         the same time by kind of operation (convolution, fusion, matrix product,
                copy or transpose, collective, custom call, other), from the op's name;
  op_ms_per_step, device_busy_share = op time per step / the step's wall time (below 1: the
                device waited, e.g. for the host's launches; on CPU only indicative, since
                not every op reports an event and ops on several threads can overlap)

Which events count: on an accelerator, the device plane's "XLA Ops" line (one event per HLO
op executed, its kernels included); where a device has no such line, and on CPU, every event
that names its HLO op (the `hlo_op` statistic of XLA's thunks). Events of one op that run
at the same time on several threads are each counted, so on CPU the op time is CPU time.
"""

from __future__ import annotations

import collections
import pathlib
import re
import time
from typing import Any, Callable, Iterable

import jax

# The kind of an HLO op, by the first pattern its name matches (names as XLA prints them,
# e.g. "convolution.12", "fusion.3", "cudnn-conv-bias-activation", "loop_add_fusion").
KINDS = (
    ("convolution", re.compile(r"conv(?!ert)", re.I)),
    ("matrix product", re.compile(r"dot|gemm|cublas|matmul", re.I)),
    ("collective", re.compile(r"all-reduce|all-gather|reduce-scatter|collective|all-to-all|nccl", re.I)),
    ("copy or transpose", re.compile(r"copy|transpose|bitcast|memcpy|memset", re.I)),
    ("custom call", re.compile(r"custom-call|custom_call|ffi_call", re.I)),
    ("fusion", re.compile(r"fusion", re.I)),
)
OPS_LINE = "XLA Ops"


def op_kind(name: str) -> str:
  """The kind of an HLO op from its name (see `KINDS`); 'other' when none matches."""
  return next((kind for kind, pattern in KINDS if pattern.search(name)), "other")


def trace_steps(run: Callable[[], Any], steps: int, directory: str | pathlib.Path,
                step_s: float | None = None) -> dict[str, Any]:
  """Trace `steps` blocking calls of `run` into `directory`; the `summarise` of the trace."""
  if steps < 1:
    raise ValueError(f"profile steps must be >= 1, got {steps}")
  directory = pathlib.Path(directory)
  before = set(directory.glob("plugins/profile/*/*.xplane.pb"))
  start = time.perf_counter()
  with jax.profiler.trace(str(directory)):
    for _ in range(steps):
      run()
  traced_s = (time.perf_counter() - start) / steps
  written = sorted(set(directory.glob("plugins/profile/*/*.xplane.pb")) - before)
  if not written:
    raise RuntimeError(f"jax.profiler wrote no .xplane.pb under {directory}")
  summary = summarise(written[-1], steps, step_s or traced_s)
  summary.update(trace=str(written[-1]), traced_step_s=traced_s)
  return summary


def _stats(event: Any) -> dict[str, Any]:
  try:
    return dict(event.stats)
  except Exception:  # a statistic whose value the binding cannot convert
    return {}


def op_events(planes: Iterable[Any]) -> list[tuple[str, float]]:
  """(HLO op name, seconds) of every op execution in a trace's planes (see the module doc)."""
  planes = list(planes)

  def named(lines, by_event_name: bool) -> list[tuple[str, float]]:
    found = []
    for line in lines:
      for event in line.events:
        name = event.name if by_event_name else _stats(event).get("hlo_op")
        if name:
          found.append((str(name), event.duration_ns * 1e-9))
    return found

  events = []
  for plane in (p for p in planes if p.name.startswith("/device:")):
    lines = list(plane.lines)
    ops = [line for line in lines if line.name == OPS_LINE]
    events += named(ops, True) if ops else named(lines, False)
  # CPU: XLA's thunks name their op
  return events or [event for plane in planes for event in named(plane.lines, False)]


def summarise(xplane: str | pathlib.Path, steps: int, step_s: float, top: int = 15) -> dict[str, Any]:
  """The summary of a trace file of `steps` steps of `step_s` seconds each (module doc)."""
  from jax.profiler import ProfileData

  events = op_events(ProfileData.from_file(str(xplane)).planes)
  if not events:
    return dict(ops=[], kinds={}, op_ms_per_step=0.0, device_busy_share=None, steps=steps,
                note="the trace holds no XLA op events")
  seconds: dict[str, float] = collections.defaultdict(float)
  counts: dict[str, int] = collections.Counter()
  for name, duration in events:
    seconds[name] += duration
    counts[name] += 1
  total = sum(seconds.values())
  by_kind: dict[str, float] = collections.defaultdict(float)
  for name, duration in seconds.items():
    by_kind[op_kind(name)] += duration
  ranked = sorted(seconds, key=seconds.get, reverse=True)[:top]
  ops = [dict(name=name, kind=op_kind(name), ms_per_step=seconds[name] / steps * 1e3,
              share=seconds[name] / total, calls_per_step=counts[name] / steps) for name in ranked]
  kinds = {kind: dict(ms_per_step=value / steps * 1e3, share=value / total)
           for kind, value in sorted(by_kind.items(), key=lambda item: -item[1])}
  per_step = total / steps
  return dict(ops=ops, kinds=kinds, op_ms_per_step=per_step * 1e3, steps=steps,
              device_busy_share=per_step / step_s if step_s > 0 else None,
              distinct_ops=len(seconds))
