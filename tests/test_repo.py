"""Repository-level contracts: README in sync with index.ipynb, CI runs the README's command, settings that matter."""
import re
import subprocess
import sys
from configparser import ConfigParser
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _readme_commands():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```(?:bash|sh)\n(.*?)```", text, re.S)
    assert block, "README.md must open with a bash block holding the two commands"
    lines = [l for l in block.group(1).splitlines() if l.strip() and not l.strip().startswith("#")]
    return lines


def test_readme_in_sync_with_index():
    r = subprocess.run([sys.executable, str(ROOT / "tools" / "nbdocs.py"), "readme", "--check"],
                       capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]


def test_readme_opens_with_the_two_commands():
    cmds = _readme_commands()
    assert any(c.rstrip().endswith("dvc repro") for c in cmds), cmds
    assert any(c.rstrip().endswith("pytest") for c in cmds), cmds


def test_ci_runs_the_readme_test_command():
    test_cmd = next(c for c in _readme_commands() if c.rstrip().endswith("pytest")).strip()
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert test_cmd in ci, f"README test command not found verbatim in .ci/run: {test_cmd}"


def test_settings_keep_papermill_tags_and_flags():
    c = ConfigParser(delimiters=["="]); c.read(ROOT / "settings.ini")
    d = c["DEFAULT"]
    assert "tags" in d["allowed_cell_metadata_keys"].split()
    assert d["tst_flags"].split() == d["tst_flags"].replace(",", " ").split()  # space-separated
    assert "nbdev==2.4.14" in d["dev_requirements"].split()
    assert not re.search(r"^\s*(import|from)\s+pkg_resources", (ROOT / "setup.py").read_text(), re.M)
