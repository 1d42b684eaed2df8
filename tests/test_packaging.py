"""pyproject.toml and requirements.txt pin the same packages at the same versions, and the
`aelab` console script points at the CLI's main, so `pip install .` and
`pip install -r requirements.txt` give the same environment and the same commands."""
import re
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib", reason="tomllib (reading pyproject.toml) is Python 3.11+")

ROOT = Path(__file__).resolve().parent.parent


def requirement_lines(text: str) -> list[str]:
    """The requirement of each line, comments and blank lines dropped."""
    return [line.split("#", 1)[0].strip() for line in text.splitlines() if line.split("#", 1)[0].strip()]


def pins(requirements: list[str]) -> dict[str, str]:
    """name -> version of each `name==version` requirement; anything else fails the test."""
    out = {}
    for req in requirements:
        m = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)\s*==\s*([^\s;,]+)", req)
        assert m, f"{req!r} is not pinned as name==version"
        name = re.sub(r"[-_.]+", "-", m.group(1)).lower()
        assert name not in out, f"{name} is listed twice"
        out[name] = m.group(2)
    return out


def requirements_txt() -> tuple[dict[str, str], dict[str, str]]:
    """(runtime pins, test pins) of requirements.txt, split at its `# tests` line."""
    text = (ROOT / "requirements.txt").read_text()
    runtime, marker, tests = text.partition("\n# tests\n")
    assert marker, "requirements.txt has no '# tests' section"
    return pins(requirement_lines(runtime)), pins(requirement_lines(tests))


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_dependencies_agree_with_requirements_txt():
    runtime, tests = requirements_txt()
    project = pyproject()["project"]
    assert pins(project["dependencies"]) == runtime
    assert pins(project["optional-dependencies"]["test"]) == tests


def test_console_script_is_the_cli_main():
    from aelab import cli

    target = pyproject()["project"]["scripts"]["aelab"]
    module, _, function = target.partition(":")
    assert module == cli.__name__ and callable(getattr(cli, function))


def test_package_data_names_files_that_exist():
    setuptools = pyproject()["tool"]["setuptools"]
    assert "aelab.*" in setuptools["packages"]["find"]["include"]
    for package, patterns in setuptools["package-data"].items():
        folder = ROOT / package.replace(".", "/")
        for pattern in patterns:
            assert list(folder.glob(pattern)), f"package data {package}/{pattern} matches no file"
