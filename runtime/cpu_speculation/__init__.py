"""NGRAM speculative decoding on SGLang's CPU engine: the missing kernels, loaded into SGLang.

The launcher puts `runtime/server_site/` on every SGLang child's PYTHONPATH; its `sitecustomize`
calls `install()` in every Python process SGLang starts (the launcher, the scheduler, the
detokenizer), before SGLang imports anything. Two parts:
- `ops`: the seven `sgl_kernel` ops SGLang's CPU path calls and the CUDA wheel lacks, as
  `torch.library` custom ops under the `sgl_kernel` namespace;
- `verify_attention`: the torch_native attention backend with a target-verify path, as a
  subclass registered in SGLang's attention-backend registry.
Off the CPU engine `install()` does nothing.
"""

from __future__ import annotations

import os

ENGINE_FLAG = "SGLANG_USE_CPU_ENGINE"


def install() -> None:
    """Register the CPU speculative ops and the verify-capable torch_native backend."""
    if os.environ.get(ENGINE_FLAG) != "1":
        return
    try:
        import sgl_kernel  # noqa: F401  (a CPU build would define the ops itself)
    except ImportError:
        pass
    from forkpoint.runtime.cpu_speculation import ops, verify_attention

    ops.register()
    verify_attention.register()
