"""The project's metadata files agree with the package they describe."""

import re
from pathlib import Path

import gfe_viz

ROOT = Path(__file__).resolve().parents[1]


def test_version_has_one_source():
    pyproject = re.search(r'^version = "([^"]+)"', (ROOT / "pyproject.toml").read_text(), re.M).group(1)
    citation = re.search(r'^version: "([^"]+)"', (ROOT / "CITATION.cff").read_text(), re.M).group(1)
    assert gfe_viz.__version__ == pyproject == citation
    assert f"## {pyproject}" in (ROOT / "CHANGELOG.md").read_text()


def test_the_papers_it_teaches_are_cited():
    citation, readme = (ROOT / "CITATION.cff").read_text(), (ROOT / "README.md").read_text()
    for paper in ("2412.00864", "2501.07400"):
        assert f"arXiv:{paper}" in citation and paper in readme and paper in gfe_viz.__doc__
    assert "MIT License" in (ROOT / "LICENSE").read_text()


def extra_requirements(project: dict, extra: str) -> list[str]:
    """The requirements of an optional dependency group, its references to other groups (gfe-viz[docs]) expanded."""
    requirements = []
    for requirement in project["optional-dependencies"][extra]:
        groups = re.fullmatch(r"gfe-viz\[([\w,-]+)\]", requirement)
        if groups:
            for group in groups.group(1).split(","):
                requirements += extra_requirements(project, group)
        else:
            requirements.append(requirement)
    return requirements


def test_the_conda_environment_mirrors_pyproject():
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = project["dependencies"] + extra_requirements(project, "test")
    conda = {
        line.strip()[2:]
        for line in (ROOT / "environment.yml").read_text().splitlines()
        if line.strip().startswith("- ") and ">=" in line
    }
    renamed = {"torch": "pytorch"}  # conda-forge's name
    for requirement in wanted:
        name, bound = requirement.split(">=")
        assert f"{renamed.get(name, name)}>={bound}" in conda, f"environment.yml lacks {requirement}"
    assert len(conda) == len(set(wanted)) + 1  # and python itself, nothing else
