"""``cmc-lab demo --headless`` from a wheel installed outside the clone (issue 17).

The wheel is built from this tree (``pip wheel . --no-deps``) and installed with ``--no-deps`` into
a fresh venv made without pip; that venv reaches the dev venv's dependencies through one ``.pth``
line (and their Jupyter data files through ``JUPYTER_PATH``), so the test is real (the package
comes from the wheel, notebooks included, and runs in a folder that is not the clone) and takes
seconds instead of a full dependency install.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

from cmc_lab.cli import demo_folder, shipped_notebooks

REPO = Path(__file__).resolve().parent.parent


def test_the_shipped_notebooks_are_the_repositorys_and_the_wheel_lists_every_one() -> None:
    assert shipped_notebooks().resolve() == (REPO / "notebooks").resolve()  # a clone: one source
    pyproject = (REPO / "pyproject.toml").read_text()
    for nb in sorted((REPO / "notebooks").glob("*.ipynb")):
        assert f'"notebooks/{nb.name}" = "cmc_lab/_notebooks/{nb.name}"' in pyproject, nb.name


def test_the_demo_folder_gets_the_notebooks_once_and_keeps_the_users_edits(tmp_path: Path) -> None:
    folder = demo_folder(tmp_path / "demo")
    names = sorted(p.name for p in folder.glob("*.ipynb"))
    assert names == sorted(p.name for p in (REPO / "notebooks").glob("*.ipynb"))
    edited = folder / "01_quickstart.ipynb"
    edited.write_text(edited.read_text().replace("import cmc_lab", "import cmc_lab  # mine"))
    demo_folder(tmp_path / "demo")
    assert "# mine" in edited.read_text()


@pytest.fixture(scope="module")
def wheel_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("wheel")
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "-q", "-w", str(work / "dist")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = (work / "dist").glob("cmc_lab-*.whl")
    env_dir = work / "venv"
    venv.create(env_dir, with_pip=False)
    python = env_dir / "bin" / "python"
    done = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps", str(wheel)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    site = subprocess.check_output(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], text=True
    ).strip()
    Path(site, "zz_dev_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return env_dir


def test_demo_headless_runs_from_the_wheel_outside_the_clone(wheel_venv: Path, tmp_path: Path) -> None:
    env = {**os.environ, "JUPYTER_PATH": str(Path(sys.prefix, "share", "jupyter"))}
    env.pop("PYTHONPATH", None)
    where = subprocess.check_output(
        [str(wheel_venv / "bin" / "python"), "-c", "import cmc_lab; print(cmc_lab.__file__)"],
        cwd=tmp_path,
        env=env,
        text=True,
    )
    assert Path(where.strip()).is_relative_to(wheel_venv), "cmc_lab comes from the wheel, not the clone"
    done = subprocess.run(
        [str(wheel_venv / "bin" / "cmc-lab"), "demo", "--headless", "--timeout", "120"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "copied 7 notebook(s) into" in done.stdout
    html = tmp_path / "demo-output" / "01_quickstart.html"
    text = html.read_text()
    assert "Engine(sim, 6 venues, journal=quickstart.sqlite" in text and "intact" in text  # ran, outputs kept
    copied = tmp_path / "cmc-lab-demo" / "01_quickstart.ipynb"
    assert json.loads(copied.read_text())["cells"], "the working copy is a notebook"
    assert not (REPO / "cmc-lab-demo").exists()
