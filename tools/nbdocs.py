"""Render the notebooks without Quarto.

    python tools/nbdocs.py readme          # execute nbs/index.ipynb and write README.md from it
    python tools/nbdocs.py readme --check  # exit 1 if README.md differs from what index.ipynb gives
    python tools/nbdocs.py html [NB ...]   # execute every notebook and write _docs/<name>.html + _docs/index.html

In README.md, a block `<!-- include reports/table1.md -->` ... `<!-- end include -->` (written in a markdown cell of
index.ipynb) is filled with the file's current content (`expand_includes`), so `readme --check` also fails when an
embedded table is stale.

`nbdev_docs` needs Quarto; this does the same job with nbconvert: cells marked `#| hide` are dropped, `#|`
directive lines are stripped, cells are executed in the notebook's own folder (as `nbdev_test` does), and each
file is written atomically. Keep `nbs/_quarto.yml` for people who have Quarto.
"""
from __future__ import annotations

import argparse
import html
import json
import os
import re
import sys
import tempfile
from configparser import ConfigParser
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TQDM_DISABLE", "1")
os.environ.pop("MPLBACKEND", None)  # the kernel must use its inline backend, or figures are not captured


def _cfg():
    c = ConfigParser(delimiters=["="])
    c.read(ROOT / "settings.ini", encoding="utf-8")
    return c["DEFAULT"]


_DIRECTIVE = re.compile(r"^\s*#\s*\|\s*(.*)$")


def _directives(src: str) -> list[str]:
    out = []
    for line in src.splitlines():
        m = _DIRECTIVE.match(line)
        if not m:
            if line.strip():
                break
            continue
        out.append(m.group(1).strip())
    return out


def _strip_directives(src: str) -> str:
    lines = src.splitlines()
    while lines and (_DIRECTIVE.match(lines[0]) or not lines[0].strip()):
        lines.pop(0)
    return "\n".join(lines)


def _prepare(nb, skip_flags=()):
    """Drop hidden cells and cells the tests skip; strip `#|` directives from what is shown."""
    import nbformat

    cells = []
    for c in nb.cells:
        if c.cell_type != "code":
            cells.append(c)
            continue
        d = _directives(c.source)
        words = {w.split(":")[0].split()[0] for w in d if w}
        if "default_exp" in words or "eval: false" in d or words & set(skip_flags):
            continue
        hide = "hide" in words or "exporti" in words
        c.source = _strip_directives(c.source)
        if hide:
            c.metadata["_hide"] = True
        cells.append(c)
    nb.cells = cells
    return nb


def _execute(nb, path: Path, timeout: int = 1800):
    from nbconvert.preprocessors import ExecutePreprocessor

    ep = ExecutePreprocessor(timeout=timeout, kernel_name="python3")
    ep.preprocess(nb, {"metadata": {"path": str(path.parent)}})
    nb.cells = [c for c in nb.cells if not c.metadata.pop("_hide", False)]
    return nb


def _atomic_write(path: Path, text: str):
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    os.replace(tmp, path)


_INCLUDE = re.compile(r"^<!--\s*include\s+(\S+)\s*-->\s*$")
_END_INCLUDE = re.compile(r"^<!--\s*end include\s*-->\s*$")
NOT_GENERATED = "not generated yet: run `dvc repro`"


def expand_includes(text: str, root: Path = ROOT) -> str:
    """Fill every `<!-- include PATH -->` ... `<!-- end include -->` block with the current content of PATH.

    PATH is relative to `root` (the repository). Whatever stood between the markers is replaced, so the notebook
    can hold an empty block; the markers stay, so the result can be expanded again. A missing file gives the line
    `not generated yet: run `dvc repro``. An include without its end marker, or a PATH outside `root`, is an error.
    """
    out, lines, i = [], text.splitlines(keepends=True), 0
    while i < len(lines):
        m = _INCLUDE.match(lines[i])
        if not m:
            out.append(lines[i]); i += 1
            continue
        j = next((k for k in range(i + 1, len(lines)) if _END_INCLUDE.match(lines[k])), None)
        if j is None or any(_INCLUDE.match(l) for l in lines[i + 1:j]):
            raise ValueError(f"`{lines[i].strip()}` has no `<!-- end include -->` after it")
        path = (root / m.group(1)).resolve()
        if not path.is_relative_to(root.resolve()):
            raise ValueError(f"include outside the repository: {m.group(1)}")
        body = path.read_text(encoding="utf-8") if path.is_file() else NOT_GENERATED + "\n"
        # blank lines around the body: the Markdown after the comment is a block of its own, and a table in it ends
        out += [lines[i].rstrip("\n") + "\n\n", body.strip("\n") + "\n\n", lines[j]]
        i = j + 1
    return "".join(out)


def readme_text() -> str:
    """Execute nbs/index.ipynb and return it as Markdown (text outputs only, so it is stable)."""
    import nbformat
    from nbconvert import MarkdownExporter

    path = ROOT / _cfg()["nbs_path"] / _cfg()["readme_nb"]
    nb = _execute(_prepare(nbformat.read(path, as_version=4), _cfg()["tst_flags"].split()), path)
    for c in nb.cells:
        if c.cell_type == "code":
            for o in c.get("outputs", []):
                if "data" in o:
                    o["data"] = {k: v for k, v in o["data"].items() if k == "text/plain"}
                if o.get("output_type") == "stream" and o.get("name") == "stderr":
                    o["text"] = ""
            c.outputs = [o for o in c.get("outputs", []) if o.get("text", "") or o.get("data")]
    body, _ = MarkdownExporter(exclude_input_prompt=True, exclude_output_prompt=True).from_notebook_node(nb)
    body = re.sub(r"\n{3,}", "\n\n", body).strip() + "\n"
    header = "<!-- Generated from nbs/index.ipynb by `python tools/nbdocs.py readme`; edit the notebook, not this file. -->\n\n"
    return expand_includes(header + body)


def cmd_readme(check: bool) -> int:
    text = readme_text()
    target = ROOT / "README.md"
    if check:
        current = target.read_text(encoding="utf-8") if target.exists() else ""
        if current != text:
            import difflib

            sys.stdout.writelines(difflib.unified_diff(current.splitlines(True), text.splitlines(True),
                                                       "README.md (committed)", "README.md (from index.ipynb)"))
            print("README.md is out of sync with nbs/index.ipynb: run `python tools/nbdocs.py readme`.")
            return 1
        print("README.md is in sync with nbs/index.ipynb")
        return 0
    _atomic_write(target, text)
    print(f"wrote {target.relative_to(ROOT)}")
    return 0


def _title_summary(nb) -> tuple[str, str]:
    for c in nb.cells:
        if c.cell_type == "markdown":
            m = re.search(r"^#\s+(.+)$", c.source, re.M)
            s = re.search(r"^>\s*(.+)$", c.source, re.M)
            if m:
                return m.group(1).strip(), (s.group(1).strip() if s else "")
    return "", ""


def cmd_html(names: list[str]) -> int:
    import nbformat
    from nbconvert import HTMLExporter

    cfg = _cfg()
    nbs = ROOT / cfg["nbs_path"]
    out = ROOT / cfg["doc_path"]
    paths = [Path(n).resolve() for n in names] if names else sorted(
        p for p in nbs.rglob("*.ipynb") if not any(x.startswith(("_", ".")) for x in p.relative_to(nbs).parts))
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover
        tqdm = lambda x, **k: x
    rows, failed = [], []
    exporter = HTMLExporter(exclude_input_prompt=True, exclude_output_prompt=True)
    for p in tqdm(paths, desc="rendering", disable=False):
        rel = p.relative_to(nbs)
        nb = nbformat.read(p, as_version=4)
        title, summary = _title_summary(nb)
        try:
            nb = _execute(_prepare(nb, cfg["tst_flags"].split()), p)
        except Exception as e:  # keep going: report every failure at the end
            failed.append(f"{rel}: {type(e).__name__}: {str(e).splitlines()[-1] if str(e) else ''}")
            continue
        body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": title or p.stem}})
        target = out / rel.with_suffix(".html")
        _atomic_write(target, body)
        rows.append((rel.with_suffix(".html").as_posix(), title or p.stem, summary))
    items = "\n".join(f'<li><a href="{html.escape(h)}">{html.escape(t)}</a> &mdash; {html.escape(s)}</li>'
                      for h, t, s in rows)
    index = f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(cfg['title'])}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:52rem;margin:2rem auto;line-height:1.5}}</style></head>
<body><h1>{html.escape(cfg['title'])}</h1><p>{html.escape(cfg['description'])}</p>
<p>Rendered notebooks (executed with <code>python tools/nbdocs.py html</code>):</p><ul>
{items}
</ul></body></html>
"""
    _atomic_write(out / "index.html", index)
    print(json.dumps({"rendered": len(rows), "failed": failed, "out": str(out.relative_to(ROOT))}))
    return 1 if failed else 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("readme", help="write README.md from nbs/index.ipynb")
    r.add_argument("--check", action="store_true", help="only compare; exit 1 when they differ")
    h = sub.add_parser("html", help="render notebooks to _docs/ with nbconvert")
    h.add_argument("notebooks", nargs="*", help="notebooks to render (default: all)")
    a = p.parse_args(argv)
    return cmd_readme(a.check) if a.cmd == "readme" else cmd_html(a.notebooks)


if __name__ == "__main__":
    sys.exit(main())
