"""Binder: a fresh environment built from binder/ alone installs the project and runs the quickstart."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell

ROOT = Path(__file__).resolve().parent.parent
BINDER = ROOT / "binder"
QUICKSTART = ROOT / "notebooks" / "01_quickstart.ipynb"


def run(cmd: list[str], *, cwd: Path, env: dict[str, str], timeout: float) -> str:
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, (
        f"{' '.join(cmd)} failed with exit {done.returncode}\n--- stdout\n{done.stdout[-4000:]}"
        f"\n--- stderr\n{done.stderr[-4000:]}"
    )
    return done.stdout


def binder_env(venv: Path, home: Path) -> dict[str, str]:
    """PATH starts at the new venv; Jupyter's user dirs are private, so nothing of this machine leaks in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "VIRTUAL_ENV", "PYTHON"))}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(venv)
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    for name, sub in (
        ("JUPYTER_CONFIG_DIR", "config"),
        ("JUPYTER_DATA_DIR", "data"),
        ("IPYTHONDIR", "ipython"),
    ):
        env[name] = str(home / sub)
    env["JUPYTER_RUNTIME_DIR"] = str(home / "runtime")
    return env


@pytest.mark.slow
def test_binder_files_alone_build_an_environment_that_runs_the_quickstart(tmp_path: Path) -> None:
    assert (BINDER / "requirements.txt").is_file(), "binder/requirements.txt is what Binder installs"
    venv = tmp_path / "venv"
    env = binder_env(venv, tmp_path / "home")
    run([sys.executable, "-m", "venv", str(venv)], cwd=tmp_path, env=env, timeout=120)
    python = str(venv / "bin" / "python")
    # As repo2docker does: from the repository root (the file holds "-e ."); pip's cache is reused.
    run(
        [python, "-m", "pip", "install", "-q", "-r", "binder/requirements.txt"],
        cwd=ROOT,
        env=env,
        timeout=600,
    )
    run(["bash", str(BINDER / "postBuild")], cwd=ROOT, env=env, timeout=120)
    url = run(
        [
            "bash",
            str(BINDER / "start"),
            python,
            "-c",
            "import os; print(os.environ['JUPYTERHUB_DEFAULT_URL'])",
        ],
        cwd=ROOT,
        env=env,
        timeout=60,
    ).strip()
    assert url.startswith("/lab/tree/"), url
    assert (ROOT / url.removeprefix("/lab/tree/")).is_file(), (
        f"binder/start opens {url}, which does not exist"
    )

    workdir = tmp_path / "notebooks"
    workdir.mkdir()
    nb = nbformat.read(QUICKSTART, as_version=4)
    nb.cells.append(
        new_code_cell("import sys, cmc_lab\nprint('PREFIX', sys.prefix)\nprint('PACKAGE', cmc_lab.__file__)")
    )
    nbformat.write(nb, workdir / QUICKSTART.name)
    run(
        [
            str(venv / "bin" / "jupyter"),
            "nbconvert",
            "--to",
            "notebook",
            "--execute",
            "--ExecutePreprocessor.timeout=180",
            "--output",
            "executed.ipynb",
            QUICKSTART.name,
        ],
        cwd=workdir,
        env=env,
        timeout=300,
    )

    executed = nbformat.read(workdir / "executed.ipynb", as_version=4)
    outputs = [o for cell in executed.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    errors = [o for o in outputs if o.output_type == "error"]
    assert errors == [], f"cells raised: {[(e.ename, e.evalue) for e in errors]}"
    text = "\n".join(
        str(o.get("text", ""))
        + str(o.get("data", {}).get("text/plain", ""))
        + str(o.get("data", {}).get("text/html", ""))
        for o in outputs
    )
    assert f"PREFIX {venv}" in text, "the notebook ran in another environment than binder's"
    assert f"PACKAGE {ROOT / 'cmc_lab'}" in text, "binder's '-e .' did not install this checkout"
    assert "FILLED" in text, "the quickstart's hedge did not fill"
    shutil.rmtree(venv, ignore_errors=True)
