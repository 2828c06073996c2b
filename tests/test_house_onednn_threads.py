"""The oneDNN plan cache is keyed by the OpenMP thread count oneDNN fixes at primitive creation."""

from __future__ import annotations

import ctypes

import pytest

from videmo.ops import native_build

# A shape no other test makes, so that the cache holds no plan for it yet.
_DIMS = (1, 9, 7, 5, 3, 3, 6, 9, 7, 1, 1, 1, 1, 1, 1)  # n, h, w, ci, kh, kw, co, oh, ow, strides, pads
_FORWARD = 0


def _supported(library: ctypes.CDLL) -> bool:
  message = ctypes.create_string_buffer(256)
  return bool(library.VidemoConvSupported((ctypes.c_int64 * len(_DIMS))(*_DIMS), 0, _FORWARD, message, 256))


def test_a_new_thread_count_makes_a_new_primitive_and_the_old_one_is_kept():
  library = native_build.load()
  if library is None:
    pytest.skip("the oneDNN library cannot be built here")
  gomp = ctypes.CDLL("libgomp.so.1")  # the OpenMP runtime libdnnl.so.3 runs on (onednn-cpu-gomp)
  library.VidemoPlanCount.restype = ctypes.c_int64
  threads = gomp.omp_get_max_threads()
  start = library.VidemoPlanCount()
  try:
    assert _supported(library) and library.VidemoPlanCount() == start + 1
    assert _supported(library) and library.VidemoPlanCount() == start + 1  # found in the cache
    gomp.omp_set_num_threads(threads + 1)  # this thread's OpenMP thread count only
    assert _supported(library) and library.VidemoPlanCount() == start + 2  # made for threads + 1
  finally:
    gomp.omp_set_num_threads(threads)
  assert _supported(library) and library.VidemoPlanCount() == start + 2  # the first one again
