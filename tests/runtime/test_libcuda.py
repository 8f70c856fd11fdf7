"""The libcuda stub that lets CUDA-built sgl_kernel load on a machine without a driver."""

import ctypes

from forkpoint.runtime.libcuda import stub_dir


def test_the_stub_builds_once_and_exports_cuPointerGetAttribute(tmp_path):
    folder = stub_dir(tmp_path)
    library = folder / "libcuda.so.1"
    built_at = library.stat().st_mtime_ns
    assert ctypes.CDLL(str(library)).cuPointerGetAttribute(None, 0, 0) == 1
    assert stub_dir(tmp_path) == folder
    assert library.stat().st_mtime_ns == built_at  # not rebuilt
