"""requirements.txt (what Heroku installs) stays in step with pyproject.toml."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHECK = ROOT / "scripts" / "check_requirements.py"


def check(pyproject: Path, requirements: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(CHECK), str(pyproject), str(requirements)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_the_repository_files_agree():
    result = check(ROOT / "pyproject.toml", ROOT / "requirements.txt")
    assert result.returncode == 0, result.stderr


def test_a_dependency_missing_from_requirements_fails(tmp_path):
    requirements = tmp_path / "requirements.txt"
    lines = (ROOT / "requirements.txt").read_text().splitlines()
    requirements.write_text("\n".join(line for line in lines if not line.startswith("APScheduler")))
    result = check(ROOT / "pyproject.toml", requirements)
    assert result.returncode == 1
    assert "apscheduler" in result.stderr.lower()


def test_a_pin_outside_the_pyproject_range_fails(tmp_path):
    pyproject = tmp_path / "pyproject.toml"
    text = (ROOT / "pyproject.toml").read_text()
    assert '"flask>=3.1,<4"' in text
    pyproject.write_text(text.replace('"flask>=3.1,<4"', '"flask>=4"'))
    result = check(pyproject, ROOT / "requirements.txt")
    assert result.returncode == 1
    assert "flask: pinned" in result.stderr


def test_a_new_pyproject_dependency_fails(tmp_path):
    pyproject = tmp_path / "pyproject.toml"
    text = (ROOT / "pyproject.toml").read_text()
    pyproject.write_text(
        text.replace("dependencies = [\n", 'dependencies = [\n    "left-pad>=1",\n', 1)
    )
    result = check(pyproject, ROOT / "requirements.txt")
    assert result.returncode == 1
    assert "left-pad" in result.stderr


def test_the_app_itself_must_be_installed(tmp_path):
    requirements = tmp_path / "requirements.txt"
    lines = (ROOT / "requirements.txt").read_text().splitlines()
    requirements.write_text("\n".join(line for line in lines if line != "."))
    result = check(ROOT / "pyproject.toml", requirements)
    assert result.returncode == 1
