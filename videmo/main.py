"""The `videmo` command line: one sub-command per job, each implemented in its own module.

    videmo demo                      forward pass of the full model on a synthetic clip
    videmo prepare --dataset ...     build a dataset's shards (TFDS builders in videmo/data/preparation/builders)
    videmo train --config ...        train and evaluate an experiment config
    videmo eval --config ...         evaluate a checkpoint
    videmo predict VIDEO --checkpoint ...   predict raw videos; --report draws why (Fig. 2)
    videmo export --checkpoint RUN OUT      the trained network as ONNX or StableHLO, any number of frames
    videmo sweep run --plan ...      many training runs (configs x seeds), resumable; their table and figure
    videmo render-clip OUT.mp4 ...   write a SynthEmo clip as a video, with its ground truth

Each sub-command is a function `f(argv: list[str]) -> int` ("module:function"; `main` if no
function is named) that parses its own flags, so
`videmo SUB --help` shows that command's options. Modules are imported only when their
command runs, so `videmo --help` is instant.
"""

from __future__ import annotations

import importlib
import sys

# name -> ("module[:function]", one-line help); the function takes argv and returns the exit code.
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("videmo.demo", "forward pass of the full model on a synthetic clip; prints shapes"),
    "prepare": ("videmo.data.preparation.prepare", "build a dataset (synthemo, afew, video_folder) into shards"),
    "convert-weights": ("videmo.convert", "convert VGG-Face / VGG16 weights from their public formats"),
    "train": ("videmo.train.cli:train_main", "train and evaluate an experiment config (configs/*.py)"),
    "eval": ("videmo.eval_command", "evaluate a checkpoint on a split; WAR, UAR, confusion; --report draws it"),
    "bench": ("videmo.bench.cli", "train-step speed, FLOPs, MFU, memory; against PyTorch when installed"),
    "predict": ("videmo.predict.cli", "predict videos with a trained model; --report shows why (Fig. 2)"),
    "export": ("videmo.export.cli", "write a trained network as ONNX or StableHLO (any number of frames)"),
    "sweep": ("videmo.sweep.cli", "configs x seeds x overrides: run (resumable, N at a time), SLURM, table"),
    "render-clip": ("videmo.data.synthemo.render_clip",
                    "write a SynthEmo clip as an .mp4 plus its ground truth (.json)"),
}


def _usage() -> str:
  width = max(len(name) for name in COMMANDS)
  lines = ["usage: videmo COMMAND [options]   (videmo COMMAND --help for its options)", "", "commands:"]
  lines += [f"  {name:<{width}}  {help_}" for name, (_, help_) in COMMANDS.items()]
  return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
  argv = list(sys.argv[1:] if argv is None else argv)
  if not argv or argv[0] in ("-h", "--help", "help"):
    print(_usage())
    return 0
  name, rest = argv[0], argv[1:]
  if name not in COMMANDS:
    print(f"videmo: unknown command {name!r}; choose one of: {', '.join(COMMANDS)}", file=sys.stderr)
    return 2
  module_name, _, function = COMMANDS[name][0].partition(":")
  module = importlib.import_module(module_name)
  return int(getattr(module, function or "main")(rest) or 0)


if __name__ == "__main__":
  sys.exit(main())
