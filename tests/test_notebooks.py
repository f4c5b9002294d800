"""Every notebook in nbs/ is a pytest item, executed exactly as `nbdev_test` executes it.

Cells flagged with one of settings.ini's `tst_flags` (e.g. `#| slow`, `#| gpu`) are skipped, as under `nbdev_test`;
set `NB_FLAGS="slow"` to run them too.
"""
import os
from configparser import ConfigParser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _cfg():
    c = ConfigParser(delimiters=["="])
    c.read(ROOT / "settings.ini", encoding="utf-8")
    return c["DEFAULT"]


def _notebooks():
    nbs = ROOT / _cfg()["nbs_path"]
    found = sorted(p for p in nbs.rglob("*.ipynb")
                   if not any(part.startswith(("_", ".")) for part in p.relative_to(nbs).parts)
                   and not (p.parent / ".notest").exists())  # nbs/pipeline: run in order by tests/test_pipeline.py
    return found


NOTEBOOKS = _notebooks()


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=[str(p.relative_to(ROOT / "nbs")) for p in NOTEBOOKS])
def test_notebook(nb):
    from nbdev.test import test_nb
    skip = _cfg().get("tst_flags", "").split()
    force = os.environ.get("NB_FLAGS", "").split()
    ok, secs = test_nb(nb, skip_flags=skip, force_flags=force, showerr=True, basepath=ROOT)
    assert ok, f"{nb.name} failed (see the traceback above)"


def test_found_notebooks():
    names = {p.name for p in NOTEBOOKS}
    assert "index.ipynb" in names and "00_core.ipynb" in names, names
