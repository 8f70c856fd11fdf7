"""A stub libcuda.so.1 for serving SGLang on a machine with no NVIDIA driver.

SGLang's wheel ships sgl_kernel built for CUDA; importing it needs `libcuda.so.1` to exist and
export `cuPointerGetAttribute`, even when the CPU engine (SGLANG_USE_CPU_ENGINE=1) never calls it.
We build a one-function stub with gcc, once, into the cache, and put its folder on the SGLang
child's LD_LIBRARY_PATH only — never on this process's, and never on a machine with real CUDA.
"""

from __future__ import annotations

import ctypes.util
import shutil
import subprocess
from importlib.resources import files
from pathlib import Path

from forkpoint.errors import RuntimeUnavailable
from forkpoint.runtime.paths import cache_dir


def has_real_libcuda() -> bool:
    return ctypes.util.find_library("cuda") is not None


def stub_dir(cache: Path | None = None) -> Path:
    """Build the stub if needed; return the folder holding `libcuda.so.1`."""
    folder = (cache or cache_dir()) / "libcuda-stub"
    library = folder / "libcuda.so.1"
    if library.is_file():
        return folder
    gcc = shutil.which("gcc") or shutil.which("cc")
    if gcc is None:
        raise RuntimeUnavailable(
            "serving SGLang on a machine without CUDA needs a stub libcuda.so.1, built with gcc, "
            "and no C compiler was found",
            hint="install one (Debian/Ubuntu: apt-get install gcc) and run again",
        )
    folder.mkdir(parents=True, exist_ok=True)
    source = folder / "libcuda_stub.c"
    source.write_text(files("forkpoint.runtime").joinpath("libcuda_stub.c").read_text())
    partial = folder / "libcuda.so.1.partial"
    done = subprocess.run(
        [gcc, "-shared", "-fPIC", "-o", str(partial), str(source)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise RuntimeUnavailable(f"gcc could not build the libcuda stub: {done.stderr.strip()}")
    partial.rename(library)  # atomic: a half-written library is never picked up
    return folder
