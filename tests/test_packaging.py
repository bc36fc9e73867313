"""A non-editable install (``pip install .``: what the Heroku buildpack or a container does) serves
the dashboard, its templates and its stylesheet, and migrates, from a directory that is not the
checkout.

The wheel is built offline from a copy of the sources (``--no-build-isolation``, with this venv's
setuptools) and installed without dependencies into a fresh venv; that venv finds the dependencies in
this one's site-packages through a ``.pth`` line (which does not activate this venv's editable
install of the checkout, so ``app`` can only come from the wheel).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
from importlib import metadata
from pathlib import Path

import pytest
import requests

from tests.fixtures import wait_until
from tests.processes import Processes, free_port

REPO = Path(__file__).resolve().parents[1]
SOURCES = ("pyproject.toml", "README.md", "app", "templates")


def run(*args: str, cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=180, check=False
    )
    assert done.returncode == 0, f"{args}: {done.stdout[-2000:]}{done.stderr[-2000:]}"
    return done.stdout


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_an_installed_wheel_serves_the_dashboard_from_anywhere(tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    for name in SOURCES:
        origin = REPO / name
        if origin.is_dir():
            ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
            shutil.copytree(origin, source / name, symlinks=True, ignore=ignore)
        else:
            shutil.copy2(origin, source / name)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    run(*pip, "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path / "dist"),
        str(source), cwd=tmp_path)  # fmt: skip
    (wheel,) = (tmp_path / "dist").glob("mi_bridge-*.whl")

    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", "--without-pip", str(venv), cwd=tmp_path)
    python = venv / "bin" / "python"
    run(*pip, "--python", str(python), "install", "--no-deps", "-q", str(wheel), cwd=tmp_path)
    purelib = Path(run(str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))",
                       cwd=tmp_path).strip())  # fmt: skip
    (purelib / "test-dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {
        "PATH": f"{venv / 'bin'}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "BRIDGE_ENV": "development",
        "DATABASE_URL": f"sqlite:///{tmp_path}/installed.db",
        "BRIDGE_API_TOKENS": "installed-token",
        "SECRET_KEY": "installed-secret",
    }
    where = run(str(python), "-c", "import app; print(app.__file__)", cwd=elsewhere, env=env)
    assert where.startswith(str(purelib)), where  # the wheel's copy, not the checkout
    version = run(str(venv / "bin" / "mi-bridge"), "--version", cwd=elsewhere, env=env)
    assert version.strip() == f"mi-bridge {metadata.version('mi-bridge')}"
    # The compiled message catalogs ship in the wheel: Korean reads in Korean from anywhere.
    korean = (
        "from app.notify.languages import gettext_for; print(gettext_for('ko')('Analysis failed'))"
    )
    assert run(str(python), "-c", korean, cwd=elsewhere, env=env).strip() == "분석 실패"
    run(str(venv / "bin" / "mi-bridge"), "db", "upgrade", cwd=elsewhere, env=env)

    procs = Processes(tmp_path)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    try:
        procs.start(
            "web", [str(python), "-m", "gunicorn", "-b", f"127.0.0.1:{port}", "app:create_app()"],
            env, cwd=elsewhere,
        )  # fmt: skip

        def login_page() -> list[requests.Response]:  # a list: a 500 Response is falsy
            try:
                return [requests.get(f"{base}/login", timeout=5)]
            except requests.ConnectionError:
                return []

        (login,) = wait_until(login_page, 60, "the installed web answers")
        assert login.status_code == 200, login.text[:500]
        assert 'name="token"' in login.text
        css = requests.get(f"{base}/static/dashboard.css", timeout=5)
        assert css.status_code == 200
        assert css.headers["Content-Type"].startswith("text/css")
        assert ".badge" in css.text
    finally:
        procs.stop_all()
