"""Build, cache and load the oneDNN convolution library (onednn_conv.cc) at first use.

The library is compiled with the machine's C++ compiler against two matching wheels from PyPI:
`onednn-cpu-gomp` (libdnnl.so.3, oneDNN 3.2, CPU only, OpenMP through libgomp) and
`onednn-devel-cpu-gomp` (the same release's headers), plus jaxlib's XLA FFI headers
(`jax.ffi.include_dir()`). Both wheels install into the environment's data directory
(`<prefix>/lib`, `<prefix>/include`). Newer `onednn` wheels are SYCL builds that need Intel's
compiler runtimes, and Debian's libdnnl-dev is the older v2 API; this pair is consistent,
CPU-only and self-contained.

The shared object is cached under $VIDEMO_CACHE_DIR (default ~/.cache/videmo)/native, named by
a hash of the source, jaxlib's version, the oneDNN library and the compiler, so an upgrade
rebuilds it and concurrent processes agree (each builds to a temporary name, then renames).

`load()` returns the loaded library or None, and on failure logs one line saying why
(no compiler, no oneDNN, a failed build); callers then use XLA's convolutions.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import logging
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

import jax

log = logging.getLogger(__name__)

SOURCE = Path(__file__).with_name("onednn_conv.cc")
LIBRARY_STEM = "videmo_onednn_conv"
TARGETS = {  # FFI target name -> symbol in the library
    "videmo_onednn_conv_fwd": "VidemoConvForward",
    "videmo_onednn_conv_bwd_data": "VidemoConvBackwardData",
    "videmo_onednn_conv_bwd_weights": "VidemoConvBackwardWeights",
}


class NativeUnavailable(RuntimeError):
  """The oneDNN library cannot be built or loaded here (the message says why, in one line)."""


def cache_dir() -> Path:
  """Where built libraries are kept: $VIDEMO_CACHE_DIR/native or ~/.cache/videmo/native."""
  root = os.environ.get("VIDEMO_CACHE_DIR") or os.path.join(
      os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "videmo")
  return Path(root) / "native"


def onednn_prefix() -> Path:
  """The prefix holding lib/libdnnl.so.3 and include/oneapi/dnnl/dnnl.hpp.

  $VIDEMO_ONEDNN_ROOT if set, else the environment's data directories (where the wheels install).
  """
  override = os.environ.get("VIDEMO_ONEDNN_ROOT")
  candidates = [override] if override else [sysconfig.get_path("data"), sys.prefix,
                                            sysconfig.get_path("data", f"{os.name}_user")]
  for candidate in candidates:
    prefix = Path(candidate)
    if (prefix / "lib" / "libdnnl.so.3").exists() and (prefix / "include" / "oneapi" / "dnnl" / "dnnl.hpp").exists():
      return prefix
  if override:
    raise NativeUnavailable(f"VIDEMO_ONEDNN_ROOT={override} holds no lib/libdnnl.so.3 and include/oneapi/dnnl/dnnl.hpp")
  raise NativeUnavailable("oneDNN not found (pip install onednn-cpu-gomp==2023.2.0 onednn-devel-cpu-gomp==2023.2.0)")


def _compiler() -> str:
  compiler = os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++") or shutil.which("clang++")
  if not compiler:
    raise NativeUnavailable("no C++ compiler (g++, c++ or clang++) to build it")
  return compiler


def _compiler_version(compiler: str) -> str:
  try:
    return subprocess.run([compiler, "--version"], capture_output=True, text=True, timeout=30).stdout
  except (OSError, subprocess.SubprocessError) as err:
    raise NativeUnavailable(f"the C++ compiler {compiler} does not run: {err}") from err


def library_path(prefix: Path, compiler: str) -> Path:
  """The cached library's path for this source, jaxlib, oneDNN and compiler."""
  dnnl = prefix / "lib" / "libdnnl.so.3"
  key = hashlib.sha256()
  for part in (SOURCE.read_bytes(), jax.lib.__version__.encode() if hasattr(jax.lib, "__version__") else b"",
               jax.__version__.encode(), str(dnnl.resolve()).encode(), str(dnnl.stat().st_size).encode(),
               _compiler_version(compiler).encode()):
    key.update(part)
  return cache_dir() / f"{LIBRARY_STEM}-{key.hexdigest()[:16]}.so"


def build(prefix: Path, compiler: str, output: Path) -> None:
  """Compile onednn_conv.cc into `output` (atomically: a temporary file, then a rename)."""
  output.parent.mkdir(parents=True, exist_ok=True)
  fd, temporary = tempfile.mkstemp(suffix=".so", dir=output.parent)
  os.close(fd)
  command = [compiler, "-O2", "-std=c++17", "-shared", "-fPIC",
             f"-I{jax.ffi.include_dir()}", f"-I{prefix / 'include'}", str(SOURCE),
             f"-L{prefix / 'lib'}", "-l:libdnnl.so.3", "-lgomp", f"-Wl,-rpath,{prefix / 'lib'}", "-o", temporary]
  try:
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    if result.returncode:
      first_error = next((line for line in result.stderr.splitlines() if "error" in line), result.stderr.strip()[:200])
      raise NativeUnavailable(f"building {SOURCE.name} failed: {first_error}")
    os.replace(temporary, output)
  finally:
    if os.path.exists(temporary):
      os.remove(temporary)


@functools.cache
def load() -> ctypes.CDLL | None:
  """The built library, loaded and its FFI targets registered for the CPU platform; None if it cannot be."""
  try:
    return _load()
  except NativeUnavailable as err:
    log.warning("oneDNN convolutions unavailable, using XLA's: %s", err)
    return None


def _load() -> ctypes.CDLL:
  if sys.platform != "linux":
    raise NativeUnavailable(f"built only on Linux, not {sys.platform}")
  prefix = onednn_prefix()
  compiler = _compiler()
  path = library_path(prefix, compiler)
  if not path.exists():
    log.info("building the oneDNN convolution library into %s", path)
    build(prefix, compiler, path)
  try:
    library = ctypes.CDLL(str(path))
  except OSError as err:
    raise NativeUnavailable(f"cannot load {path}: {err}") from err
  for target, symbol in TARGETS.items():
    jax.ffi.register_ffi_target(target, jax.ffi.pycapsule(getattr(library, symbol)), platform="cpu")
  library.VidemoOnednnVersion.restype = ctypes.c_char_p
  library.VidemoConvSupported.restype = ctypes.c_int
  library.VidemoConvSupported.argtypes = [ctypes.POINTER(ctypes.c_int64), ctypes.c_int, ctypes.c_int,
                                          ctypes.c_char_p, ctypes.c_int]
  library.VidemoEffectiveCpuIsa.restype = ctypes.c_int
  return library


# oneDNN's dnnl_cpu_isa_t values (oneapi/dnnl/dnnl_types.h, oneDNN 3.2) and their names.
CPU_ISAS = {0x0: "default", 0x1: "sse41", 0x3: "avx", 0x7: "avx2", 0xF: "avx2_vnni",
            0x1F: "avx2_vnni_2", 0x27: "avx512_core", 0x67: "avx512_core_vnni",
            0xE7: "avx512_core_bf16", 0x1EF: "avx512_core_fp16", 0xFEF: "avx512_core_amx",
            0x1FEF: "avx512_core_amx_fp16"}
_NATIVE_BF16_ISAS = ("avx2_vnni_2", "avx512_core_bf16", "avx512_core_fp16", "avx512_core_amx",
                     "avx512_core_amx_fp16")


def effective_cpu_isa() -> str | None:
  """The instruction set oneDNN dispatches to here (e.g. 'avx2', 'avx512_core_bf16'), or None.

  This is the CPU's own, or less where `ONEDNN_MAX_CPU_ISA` caps it.
  """
  library = load()
  if library is None:
    return None
  value = library.VidemoEffectiveCpuIsa()
  return CPU_ISAS.get(value, hex(value))


def isa_has_native_bf16(isa: str | None) -> bool:
  """Whether oneDNN's instruction set `isa` has bf16 arithmetic (AVX512-BF16, AMX or AVX2-VNNI-2)."""
  return isa in _NATIVE_BF16_ISAS


def onednn_version() -> str | None:
  """The oneDNN release the library runs with (e.g. '3.2.0'), or None when it is unavailable."""
  library = load()
  return library.VidemoOnednnVersion().decode() if library is not None else None
