"""Repository-level contracts: README in sync with index.ipynb, CI runs the README's command, settings that matter,
each pipeline stage declares the package modules it imports."""
import ast
import importlib.util
import json
import re
import subprocess
import sys
from configparser import ConfigParser
from pathlib import Path

import yaml

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


# -- every pipeline stage depends on exactly the package modules it runs --------------------------------------------------
PKG = ROOT / "infinity_brush"


def _package_imports(src: str, inside_package: bool) -> set:
    """Modules of infinity_brush that `src` imports anywhere (functions' lazy imports too): `from infinity_brush.x
    import ...`, `import infinity_brush.x`, `from infinity_brush import x`, and inside the package `from .x import ...`."""
    out = set()
    for node in ast.walk(ast.parse(src)):
        if isinstance(node, ast.ImportFrom) and node.level == 1 and inside_package:
            out |= {node.module.split(".")[0]} if node.module else {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] == "infinity_brush":
            parts = node.module.split(".")
            out |= {parts[1]} if len(parts) > 1 else {a.name for a in node.names}
        elif isinstance(node, ast.Import):
            out |= {a.name.split(".")[1] for a in node.names if a.name.startswith("infinity_brush.")}
    return {m for m in out if (PKG / f"{m}.py").exists()}


def _closure(mods: set) -> set:
    seen, todo = set(), list(mods)
    while todo:
        m = todo.pop()
        if m not in seen:
            seen.add(m)
            todo += _package_imports((PKG / f"{m}.py").read_text(), inside_package=True) - seen
    return seen


def _notebook_code(path: Path) -> str:
    cells = json.loads(path.read_text())["cells"]
    code = ("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    return "\n".join(c for c in code if not c.lstrip().startswith(("%", "!")))


def test_stages_depend_on_the_modules_they_import():
    """A stage that imports a module it does not declare is not re-run when that module changes (a stale result);
    a stage that declares the whole package is re-run by any change (days of training at paper scale)."""
    spec = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    checked = 0
    for name, stage in spec["stages"].items():
        deps = [d.replace("${measures.notebook}", params["measures"]["notebook"]) for d in stage.get("do", stage)["deps"]]
        assert "infinity_brush" not in deps and "infinity_brush/" not in deps, f"stage {name} depends on the whole package"
        notebooks = [d for d in deps if d.endswith(".ipynb")]
        assert len(notebooks) == 1, (name, deps)
        want = {f"infinity_brush/{m}.py" for m in _closure(_package_imports(_notebook_code(ROOT / notebooks[0]), inside_package=False))}
        have = {d for d in deps if d.startswith("infinity_brush/")}
        assert have == want, f"stage {name}: missing {sorted(want - have)}, not imported {sorted(have - want)}"
        checked += 1
    assert checked >= 8, checked


def test_import_scan_sees_lazy_and_relative_imports():
    src = "from .core import a\ndef f():\n    from infinity_brush.data import b\n    import infinity_brush.sampler\nfrom infinity_brush import tables"
    assert _package_imports(src, inside_package=True) == {"core", "data", "sampler", "tables"}
    assert _package_imports(src, inside_package=False) == {"data", "sampler", "tables"}
    assert {"core", "smoothing"} <= _closure({"data"})


SECTION_OF = {"T": "train", "S": "sample", "E": "embed", "EV": "eval", "C": "cost"}   # the stage notebooks' names for them


def _keys_the_stages_read():
    "(section, key) pairs the pipeline notebooks read: T[\"lr\"], cfg[\"train\"][\"seed\"], ..."
    code = "\n".join(_notebook_code(p) for p in sorted((ROOT / "nbs/pipeline").glob("*.ipynb")))
    pairs = {(SECTION_OF[v], k) for v, k in re.findall(r'\b(T|S|E|EV|C)\["(\w+)"\]', code)}
    return pairs | set(re.findall(r'cfg\["(\w+)"\]\["(\w+)"\]', code))


def test_every_profile_resolves_every_key_the_stages_read():
    "No YAML merge that drops keys; every profile (over its base) has every value a stage reads, so no stage falls back to a hidden default."
    from infinity_brush.core import resolve_profile
    text = (ROOT / "params.yaml").read_text()
    assert "<<:" not in text, "params.yaml: a YAML merge key (<<:) is shallow and drops keys; use `base:`"
    P = yaml.safe_load(text)
    pairs = _keys_the_stages_read()
    assert len(pairs) >= 40 and ("train", "logsnr_shift") in pairs and ("sample", "eta") in pairs, sorted(pairs)
    for name in P["profiles"]:
        v = resolve_profile(P, name)
        for sec, key in sorted(pairs):
            v[sec][key]                                          # a KeyError names the profile, section and key
        for role, spec in v["data"].items(): assert {"source", "cond"} <= set(spec), (name, role)
