"""perf/ in parts: the CLI starts without the peers or the studies, the bench loads a peer only
for a peer run, the projection is arithmetic alone, and the bench talks to the runtime only
through RuntimeClient."""

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PARTS = ("bench", "projection", "peers", "studies")
OPTIONAL = ("forkpoint.perf.peers", "forkpoint.perf.studies")


def module_level_imports(path: Path) -> list[str]:
    """Absolute names imported at a module's top level (not inside a function)."""
    names = []
    for node in ast.parse(path.read_text(), str(path)).body:
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names += [f"{node.module}.{alias.name}" for alias in node.names]
    return names


def all_imports(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names += [f"{node.module}.{alias.name}" for alias in node.names]
    return names


def test_every_part_of_perf_is_a_package_setuptools_installs():
    pyproject = (ROOT / "pyproject.toml").read_text()
    for part in PARTS:
        assert (ROOT / "perf" / part / "__init__.py").is_file()
        assert f'"forkpoint.perf.{part}"' in pyproject
    assert [p.name for p in (ROOT / "perf").glob("*.py")] == ["__init__.py"]


def test_starting_the_cli_loads_neither_peers_nor_studies():
    code = (
        "import sys, forkpoint.cli.main; "
        f"print([m for m in sys.modules if m.startswith({OPTIONAL!r})])"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_the_cli_and_the_bench_import_peers_and_studies_only_inside_functions():
    files = [*(ROOT / "cli").rglob("*.py"), *(ROOT / "perf" / "bench").rglob("*.py")]
    wrong = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in files
        for name in module_level_imports(path)
        if name.startswith(OPTIONAL)
    ]
    assert not wrong, "\n".join(wrong)


def test_the_projection_imports_nothing_else_of_perf():
    wrong = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in (ROOT / "perf" / "projection").rglob("*.py")
        for name in all_imports(path)
        if name.startswith("forkpoint.perf.")
        and not name.startswith("forkpoint.perf.projection")
        and name != "forkpoint.perf.RECORDS"
    ]
    assert not wrong, "\n".join(wrong)


def test_the_bench_reaches_the_runtime_only_through_the_runtime_client():
    raw = [
        str(path.relative_to(ROOT))
        for path in (ROOT / "perf" / "bench").rglob("*.py")
        if any(name.split(".")[0] == "httpx" for name in all_imports(path))
    ]
    assert not raw, f"raw httpx in {raw}: use forkpoint.runtime.client.RuntimeClient"
