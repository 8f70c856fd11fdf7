"""Nothing imports upwards: core/ (the package `forkpoint`: errors, the shared kernel) is at the
bottom, then runtime/, then programs/, with api/, cli/ and perf/ on top. Every import counts,
in functions and TYPE_CHECKING blocks too; `import forkpoint` alone stays cheap."""

import ast
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import forkpoint
import forkpoint.programs

ROOT = Path(__file__).parents[1]
PACKAGES = {"forkpoint": "core"} | {f"forkpoint.{n}": n for n in ("programs", "runtime", "api")}
PACKAGES |= {f"forkpoint.{n}": n for n in ("cli", "perf")}
FORBIDDEN = {
    "core": {"programs", "runtime", "api", "cli", "perf"},
    "runtime": {"programs", "api", "cli", "perf"},
    "programs": {"api", "cli", "perf"},
}
# The public API is programs', re-exported by the package on first use.
ALLOWED = {(Path("core/__init__.py"), "programs")}


def module_name(path: Path) -> str:
    folder, *rest = path.relative_to(ROOT).with_suffix("").parts
    package = next(name for name, f in PACKAGES.items() if f == folder)
    return ".".join([package, *rest]).removesuffix(".__init__")


def imported(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module name) for every import statement in `path`."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")
            base = base[: len(base) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            found += [(node.lineno, f"{module}.{alias.name}") for alias in node.names]
    return found


def layer(module: str) -> str | None:
    """The folder that defines `module` (an import's name, maybe ending in an attribute)."""
    parts = module.split(".")
    if parts[0] != "forkpoint":
        return None
    return PACKAGES.get(".".join(parts[:2]), "core")


def test_no_module_imports_a_layer_above_its_own():
    wrong = []
    for folder, forbidden in FORBIDDEN.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            for line, module in imported(path):
                target = layer(module)
                relative = path.relative_to(ROOT)
                if target in forbidden and (relative, target) not in ALLOWED:
                    wrong.append(f"{relative}:{line} imports {module} ({folder} → {target})")
    assert not wrong, "imports upwards:\n" + "\n".join(wrong)


def test_the_layer_check_sees_function_level_and_relative_imports(tmp_path, monkeypatch):
    monkeypatch.setitem(globals(), "ROOT", tmp_path)
    source = tmp_path / "runtime" / "sub" / "mod.py"
    source.parent.mkdir(parents=True)
    source.write_text("def f():\n    from ...programs import extract\n    from .. import errors\n")
    assert imported(source) == [(2, "forkpoint.programs.extract"), (3, "forkpoint.runtime.errors")]
    assert layer("forkpoint.programs.extract") == "programs"
    assert layer("forkpoint.errors") == layer("forkpoint.ExtractionTask") == "core"


def test_import_forkpoint_is_the_public_api_and_its_version():
    from forkpoint import ExtractionTask, extract

    assert forkpoint.__version__ == metadata.version("forkpoint")
    assert ExtractionTask is forkpoint.programs.ExtractionTask
    assert extract is forkpoint.programs.extract
    assert forkpoint.__all__ == forkpoint.programs.__all__
    assert forkpoint.ForkpointError is forkpoint.programs.ForkpointError


def test_import_forkpoint_alone_loads_neither_programs_nor_sglang_nor_torch():
    code = (
        "import sys, forkpoint, forkpoint.errors; "
        "print(*(m in sys.modules for m in ('forkpoint.programs', 'sglang', 'torch')))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "False", "False"]


def test_every_file_of_core_is_visible_to_mypy():
    linked = {p.name for p in (ROOT / ".ci" / "mypy" / "forkpoint").iterdir() if p.is_symlink()}
    assert {p.name for p in (ROOT / "core").glob("*.py")} <= linked
