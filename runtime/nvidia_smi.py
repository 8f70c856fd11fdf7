"""What `nvidia-smi` says about this machine's GPUs: the queries the doctor runs and their parsers.

Commands run through a `Runner`, so tests replay recorded outputs instead of needing a GPU. The
query fields are the ones `nvidia-smi --help-query-gpu` documents.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class CommandOutput:
    returncode: int
    stdout: str
    stderr: str = ""


Runner = Callable[[list[str]], CommandOutput | None]  # None: the command is not installed


def run_command(argv: list[str]) -> CommandOutput | None:
    if shutil.which(argv[0]) is None:
        return None
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return CommandOutput(1, "", str(exc))
    return CommandOutput(done.returncode, done.stdout, done.stderr)


GPU_QUERY = [
    "nvidia-smi",
    "--query-gpu=index,name,memory.total,driver_version",
    "--format=csv,noheader,nounits",
]
P2P_QUERY = ["nvidia-smi", "topo", "-p2p", "r"]
# gen.max and width.max are what the card and its slot can do together (a x16 card in a x8 slot
# reports 8); gen.gpumax is the card's own maximum; gen.current drops while the card is idle.
LINK_QUERY = [
    "nvidia-smi",
    "--query-gpu=index,pcie.link.gen.current,pcie.link.gen.max,pcie.link.gen.gpumax,"
    "pcie.link.width.current,pcie.link.width.max,power.limit,power.default_limit",
    "--format=csv,noheader,nounits",
]


@dataclass(frozen=True)
class Gpu:
    index: int
    name: str
    memory_mib: int
    driver: str


@dataclass(frozen=True)
class PcieLink:
    """One GPU's PCIe link and power limit; None where nvidia-smi says N/A."""

    index: int
    gen: int | None
    gen_max: int | None  # card and slot together
    gen_card: int | None  # the card alone
    width: int | None
    width_max: int | None  # card and slot together
    power_limit_w: float | None
    power_default_w: float | None


def parse_gpus(csv: str) -> list[Gpu]:
    gpus = []
    for line in csv.strip().splitlines():
        index, name, memory, driver = (cell.strip() for cell in line.split(","))
        gpus.append(Gpu(int(index), name, int(float(memory)), driver))
    return gpus


def parse_p2p(matrix: str) -> dict[tuple[int, int], str]:
    """`nvidia-smi topo -p2p r`: the read-P2P status of each GPU pair (OK, NS, CNS, ...)."""
    pairs: dict[tuple[int, int], str] = {}
    for line in matrix.splitlines():
        cells = line.split()
        if len(cells) < 2 or not cells[0].startswith("GPU") or not cells[0][3:].isdigit():
            continue
        row = int(cells[0][3:])
        for col, status in enumerate(cells[1:]):
            if col != row:
                pairs[(row, col)] = status
    return pairs


def parse_links(csv: str) -> list[PcieLink]:
    """The rows of LINK_QUERY's output."""
    links = []
    for line in csv.strip().splitlines():
        cells = [_number(cell) for cell in line.split(",")]
        index, gen, gen_max, gen_card, width, width_max = (
            None if cell is None else int(cell) for cell in cells[:6]
        )
        links.append(
            PcieLink(index or 0, gen, gen_max, gen_card, width, width_max, cells[6], cells[7])
        )
    return links


def _number(cell: str) -> float | None:
    try:
        return float(cell.strip())
    except ValueError:  # "[N/A]", "[Not Supported]"
        return None
