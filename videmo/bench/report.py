"""The benchmark's results as a printed table and as JSON (`--json OUT`).

`results` is the dict `runner.run` returns; every figure in it was measured in that run
(or counted: FLOPs), and the table prints each with its unit and its source.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def _si(value: float, unit: str) -> str:
  for scale, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
    if abs(value) >= scale:
      return f"{value / scale:.3g} {prefix}{unit}"
  return f"{value:.3g} {unit}"


def _bytes(value: int | None) -> str:
  if value is None:
    return "n/a"
  for scale, unit in ((2 ** 30, "GiB"), (2 ** 20, "MiB"), (2 ** 10, "KiB")):
    if value >= scale:
      return f"{value / scale:.2f} {unit}"
  return f"{value} B"


def _rows(rows: list[tuple[str, str]]) -> list[str]:
  width = max(len(name) for name, _ in rows)
  return [f"  {name:<{width}}  {value}" for name, value in rows]


def _conv_line(conv: dict[str, Any] | None) -> str:
  if not conv:
    return "not recorded"
  layers = conv.get("layers") or {conv["path"]: 1}
  names = {"onednn": f"oneDNN {conv['onednn']} (videmo/ops)", "xla": "XLA's"}
  if len(layers) == 1:
    path = names[next(iter(layers))]
  else:
    path = " and ".join(f"{names[p]} for {n} layers" for p, n in sorted(layers.items()))
  why = f" ({conv['why_xla']})" if conv.get("why_xla") else ""
  dtype = f"{conv['dtype']}: " if conv.get("dtype") else ""
  return f"{dtype}{path}{why}; model.conv_impl={conv['impl']}"


def format_report(results: dict[str, Any]) -> str:
  """The table printed by `videmo bench`."""
  machine, batch, model, step = results["machine"], results["batch"], results["model"], results["step"]
  lines = [f"videmo bench: {results['config']}",
           f"  machine: {machine['description']}; jax {machine['jax']}"
           + (f"; XLA_FLAGS={machine['xla_flags']}" if machine["xla_flags"] else ""),
           f"  model: {model['description']}; compute {model['dtype']}, parameters float32"
           + ("; remat" if model["remat"] else ""),
           f"  convolutions: {_conv_line(model.get('conv'))}",
           f"  batch: {batch['clips']} clips x {batch['frames']} frames x {batch['size']}x{batch['size']} "
           f"= {batch['clips'] * batch['frames']} frames per step", ""]
  flops, peak = results["flops"], results["peak"]
  rows = [
      ("train step (jit)", f"{step['median_s']:.4g} s/step  (median of {len(step['times_s'])}, "
                           f"range {min(step['times_s']):.4g}-{max(step['times_s']):.4g} s)"),
      ("clips/s", f"{step['clips_per_s']:.4g}"),
      ("frames/s", f"{step['frames_per_s']:.4g}"),
      ("FLOPs per step", f"{_si(flops['model_train'], 'FLOP')} analytic (3 x forward); "
                         + (f"{_si(flops['xla'], 'FLOP')} by XLA's cost analysis" if flops["xla"] else
                            f"XLA: n/a ({flops['xla_uncounted']})" if flops.get("xla_uncounted") else "XLA: n/a")),
      ("achieved", f"{_si(flops['model_flops_per_s'], 'FLOP/s')} analytic"
                   + (f", {_si(flops['xla_flops_per_s'], 'FLOP/s')} XLA" if flops["xla"] else "")),
      ("MFU", (f"{100 * results['mfu']:.1f}% of {_si(peak['tflops'] * 1e12, 'FLOP/s')} ({peak['source']})"
               if results["mfu"] is not None else "n/a (no peak: --peak-tflops NUMBER or measure)")),
      ("peak memory", f"{_bytes(results['memory']['peak_bytes'])} ({results['memory']['source']}); "
                      f"XLA plans {_bytes(results['memory']['xla_planned_bytes'])} for the step"),
      ("compile", f"{step['compile_s']:.3g} s"),
  ]
  pipe = results.get("pipeline")
  if pipe is not None:
    rows.append(("input pipeline", (f"skipped: {pipe['skipped']}" if "skipped" in pipe else
                                    f"{pipe['batches_per_s']:.3g} batches/s = {pipe['clips_per_s']:.3g} clips/s "
                                    f"({pipe['dataset']}, workers={pipe['workers']}; first batch "
                                    f"{pipe['first_batch_s']:.2g} s"
                                    + (f"; {pipe['cached_batches_per_s']:.3g} batches/s once decoded "
                                          f"({pipe.get('decoded_where') or 'in memory'})"
                                       if pipe.get("cached_batches_per_s") else "")
                                    + "); the step needs "
                                    f"{1 / step['median_s']:.3g} batches/s")))
  lines += _rows(rows)

  torch = results.get("torch")
  if torch is not None:
    lines.append("")
    if "skipped" in torch:
      lines.append(f"  PyTorch: {torch['skipped']}")
    else:
      ratios = " ".join(f"{r:.2f}" for r in torch["ratios"])
      lines += [f"  PyTorch {torch['version']} ({torch['mode']}) on the same batch, interleaved with JAX:",
                *_rows([
                    ("PyTorch step", f"{torch['median_s']:.4g} s/step (median of {len(torch['times_s'])})"),
                    ("JAX / PyTorch", f"median {torch['median_ratio']:.2f} (per pair: {ratios})"),
                    ("same weights, same batch", f"relative difference: loss {torch['check']['loss']:.1e}, "
                                                 f"gradient norm {torch['check']['grad_norm']:.1e}, "
                                                 f"update {torch['check']['update']:.1e}"),
                ])]
  parts = results.get("breakdown")
  if parts:
    lines += ["", "  breakdown (each part jitted alone; see videmo/bench/breakdown.py):"]
    lines += _rows([(name, f"{seconds:.4g} s  ({100 * seconds / step['median_s']:.0f}% of the step)")
                    for name, seconds in parts])
  lines += _profile_lines(results.get("profile"))
  search = results.get("max_batch")
  if search:
    tried = ", ".join(f"{b}{'' if ok else ' (no)'}" for b, ok in search["tried"])
    lines += ["", f"  largest batch that fits: {search['max_batch']} clips (tried {tried}; cap {search['cap']})"]
  return "\n".join(lines)


def _profile_lines(profile: dict[str, Any] | None) -> list[str]:
  """The report's lines for a `profile.trace_steps` summary (none without one)."""
  if not profile:
    return []
  busy = profile.get("device_busy_share")
  lines = ["", f"  profile of {profile['steps']} steps ({profile.get('trace', 'trace')}): "
               f"{profile['op_ms_per_step']:.4g} ms of XLA ops per step"
               + (f" = {100 * busy:.0f}% of the step's wall time" if busy is not None else "")]
  if profile.get("note"):
    return lines + [f"    {profile['note']}"]
  lines += _rows([(kind, f"{value['ms_per_step']:.4g} ms/step  ({100 * value['share']:.0f}%)")
                  for kind, value in profile["kinds"].items()])
  lines.append("    top ops:")
  lines += [f"    {op['ms_per_step']:9.4g} ms  {100 * op['share']:4.1f}%  x{op['calls_per_step']:.3g}  {op['name']}"
            for op in profile["ops"]]
  return lines


def write_json(results: dict[str, Any], path: str | Path) -> Path:
  path = Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_text(json.dumps(results, indent=2, default=float))
  return path
