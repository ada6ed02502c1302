"""The installed package on every supported Python (3.10, 3.11, 3.12): its modules import, its
console script answers, its metadata and the Makefile agree, and its source stays within 3.10."""
import ast
import importlib
import importlib.metadata
import pathlib
import pkgutil
import re
import subprocess
import sys

import pytest

import lqbench
from lqbench import cli
from lqbench._compat import tomllib

REPO = pathlib.Path(__file__).resolve().parents[1]
TESTS = REPO / "tests"
SUPPORTED = ("3.10", "3.11", "3.12")


def _modules():
    import lqbench.models
    import lqbench.tflite

    names = []
    for package in (lqbench, lqbench.models, lqbench.tflite):
        names += [m.name for m in pkgutil.walk_packages(package.__path__, package.__name__ + ".")]
    return sorted(set(names))


def test_every_module_imports():
    # a module that no smoke test reaches still has to import on 3.10 and 3.12 (removed or new
    # standard-library names, wheels of the pinned stack)
    modules = _modules()
    assert {"lqbench.cli", "lqbench.models.registry", "lqbench.tflite.convert"} <= set(modules)
    for name in modules:
        importlib.import_module(name)


def test_console_script_help_and_version():
    script = pathlib.Path(sys.executable).parent / "lqbench"
    assert script.is_file(), f"no `lqbench` console script next to {sys.executable}: pip install -e ."
    done = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: lqbench")
    commands = sorted(p.stem for p in (REPO / "lqbench" / "commands").glob("[!_]*.py"))
    assert len(commands) >= 5
    for name in commands:
        assert re.search(rf"^\s+{name}\s", done.stdout, re.M), f"`lqbench --help` does not list {name}"
    version = subprocess.run([str(script), "--version"], capture_output=True, text=True, timeout=300)
    assert version.stdout.strip() == f"lqbench {lqbench.__version__}"
    assert importlib.metadata.version("lqbench") == lqbench.__version__


def test_every_command_has_help(capsys):
    names = [p.stem for p in (REPO / "lqbench" / "commands").glob("[!_]*.py")]
    for name in names:
        with pytest.raises(SystemExit) as exit_:
            cli.main([name, "--help"])
        assert exit_.value.code == 0
        out = capsys.readouterr().out
        assert out.startswith(f"usage: lqbench {name}"), out[:200]
    with pytest.raises(SystemExit) as exit_:
        cli.main(["no-such-command"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice" in err and "no-such-command" in err


def test_supported_versions_agree_in_metadata_makefile_and_ci():
    running = "%d.%d" % sys.version_info[:2]
    assert running in SUPPORTED
    meta = importlib.metadata.metadata("lqbench")
    assert meta["Requires-Python"].replace(" ", "") in (">=3.10,<3.13", "<3.13,>=3.10")
    classifiers = {c.rsplit(" :: ", 1)[1] for c in meta.get_all("Classifier") if c.count("::") == 2
                   and c.startswith("Programming Language :: Python ::")}
    assert classifiers == {"3", *SUPPORTED}
    makefile = (REPO / "Makefile").read_text()
    assert set(re.search(r"^SUPPORTED\s*:=\s*(.+)$", makefile, re.M).group(1).split()) == set(SUPPORTED)
    # .ci/run's steps: "VERSION VENV TARGET": the full suite on one version, the smoke subset on the others
    steps = dict(re.findall(r'"(3\.\d+) \.venv\d* (test|test-smoke)"', (REPO / ".ci" / "run").read_text()))
    assert set(steps) == set(SUPPORTED) and sorted(steps.values()) == ["test", "test-smoke", "test-smoke"]


def test_toml_reader_is_the_standard_library_or_its_backport():
    expected = "tomllib" if sys.version_info >= (3, 11) else "tomli"
    assert tomllib.__name__.split(".")[0] == expected
    data = tomllib.loads('name = "x"\nseeds = [0, 1]\n[grid]\nlearning_rate = [1e-3, 1e-4]\n')
    assert data == {"name": "x", "seeds": [0, 1], "grid": {"learning_rate": [1e-3, 1e-4]}}
    with pytest.raises(tomllib.TOMLDecodeError, match="line 2"):
        tomllib.loads('a = 1\nb = = 2\n')


def _vermin(*args):
    code = "import sys, vermin; sys.exit(vermin.main())"  # its console script, from this Python
    return subprocess.run([sys.executable, "-c", code, "--no-tips", "--violations", "--target=3.10-", *args],
                          capture_output=True, text=True, timeout=300)


def test_source_stays_within_python_3_10():
    # vermin reads every file (syntax, standard-library modules, functions and arguments) and
    # fails when one needs a newer Python than 3.10; version-guarded imports are understood
    folders = [str(REPO / d) for d in ("lqbench", "models", "tflite", "tests", "bench") if (REPO / d).is_dir()]
    done = _vermin("--eval-annotations", *folders, str(REPO / "setup.py"))
    assert done.returncode == 0, done.stdout + done.stderr


def test_vermin_catches_a_3_11_only_name(tmp_path):
    # the check above can fail: a bare `import tomllib` is beyond 3.10
    (tmp_path / "new.py").write_text("import tomllib\n")
    done = _vermin(str(tmp_path))
    assert done.returncode != 0 and "tomllib" in done.stdout


def _smoke_entries():
    tree = ast.parse((TESTS / "conftest.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "SMOKE" for t in node.targets):
            return ast.literal_eval(node.value)
    raise AssertionError("tests/conftest.py has no SMOKE list")


def test_smoke_entries_name_existing_tests():
    # `pytest -m smoke` selects by these ids: a renamed or moved test must fail here, not shrink CI
    entries = _smoke_entries()
    assert len(entries) == len(set(entries)) >= 10
    for entry in entries:
        file, _, rest = entry.partition("::")
        path = TESTS / file
        assert path.is_file(), f"smoke entry {entry!r}: no file tests/{file}"
        function = rest.partition("[")[0]  # parameter ids are checked when `-m smoke` collects
        tree = ast.parse(path.read_text())
        found = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == function]
        assert found, f"smoke entry {entry!r}: no test {function} in tests/{file}"
