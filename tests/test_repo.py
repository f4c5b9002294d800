"""Repository-level contracts: README in sync with index.ipynb, CI runs the README's command, settings that matter."""
import importlib.util
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


def _nbdocs():
    spec = importlib.util.spec_from_file_location("nbdocs", ROOT / "tools" / "nbdocs.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_include_blocks_are_filled_with_the_file(tmp_path):
    nbdocs = _nbdocs()
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "table1.md").write_text("**Table 1.** caption\n\n| a | b |\n|---|---|\n| 1 | 2 |\n")
    text = ("# title\n\n<!-- include reports/table1.md -->\nstale table\n<!-- end include -->\n\n"
            "<!-- include reports/table9.md -->\n<!-- end include -->\nafter\n")
    out = nbdocs.expand_includes(text, tmp_path)
    assert out == ("# title\n\n<!-- include reports/table1.md -->\n\n**Table 1.** caption\n\n| a | b |\n|---|---|\n"
                   "| 1 | 2 |\n\n<!-- end include -->\n\n<!-- include reports/table9.md -->\n\n"
                   "not generated yet: run `dvc repro`\n\n<!-- end include -->\nafter\n")
    assert nbdocs.expand_includes(out, tmp_path) == out  # idempotent: the README can be checked by re-expanding it
    (tmp_path / "reports" / "table1.md").write_text("new\n")
    assert "new\n" in nbdocs.expand_includes(out, tmp_path) and "caption" not in nbdocs.expand_includes(out, tmp_path)
    assert nbdocs.expand_includes("no markers\n", tmp_path) == "no markers\n"
    for bad, msg in [("<!-- include a.md -->\ntext\n", "no `<!-- end include -->`"),
                     ("<!-- include ../outside.md -->\n<!-- end include -->\n", "outside the repository")]:
        try:
            nbdocs.expand_includes(bad, tmp_path)
        except ValueError as e:
            assert msg in str(e), e
        else:
            raise AssertionError(f"no error for {bad!r}")


def test_readme_includes_are_current():
    """Every `<!-- include PATH -->` block of README.md holds PATH's current content (cheap, without executing)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert _nbdocs().expand_includes(text) == text, "an embedded file changed: run `python tools/nbdocs.py readme`"


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
