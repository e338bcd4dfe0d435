"""The documentation's code runs: every ```python block of docs/*.md and
README.md, and every ``>>>`` example in relu_ext's docstrings.

A page's blocks run in order in one namespace (later blocks use what earlier
ones made, as a reader would), in a temporary directory, with matplotlib's Agg
backend. Blocks that are not meant to run as Python (shell commands, torchrun
launches) are fenced as ```sh or ```text. A failure's traceback names the
page and the line in it. The Sphinx build of the pages is `make docs`, not a
test.
"""

import doctest
import importlib
import pkgutil
import re
from pathlib import Path

import pytest
import torch

import relu_ext

ROOT = Path(__file__).resolve().parents[2]
PAGES = sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md"]

# Pages whose examples need a file a command makes first, as the page says.
SETUP = {
    # "A saved model loads back with": the file `relu-ext fit --save model.pt` writes.
    "lesson.md": lambda: _run_cli(["fit", "--quiet", "--save", "model.pt", "--out", "saved.png"]),
}

_FENCE = re.compile(r"^```(\S*)")


def _run_cli(argv):
    from relu_ext.cli import main

    assert main(argv) == 0, f"relu-ext {' '.join(argv)} failed"


def python_blocks(text):
    """The ```python blocks of a Markdown text, as (line of the first code line, code)."""
    blocks, lines, start, language = [], text.splitlines(), None, None
    for number, line in enumerate(lines, start=1):
        fence = _FENCE.match(line)
        if start is None:
            if fence:
                start, language = number + 1, fence.group(1)
        elif line.strip() == "```":
            if language == "python":
                blocks.append((start, "\n".join(lines[start - 1:number - 1])))
            start = None
    assert start is None, f"a ``` fence opened at line {start - 1} is never closed"
    return blocks


def run_page(path, text=None):
    """Runs the page's python blocks in order, in the current directory."""
    text = path.read_text(encoding="utf-8") if text is None else text
    namespace = {"__name__": "__docs__"}
    torch.manual_seed(0)
    for line, code in python_blocks(text):
        # Padding, so that the traceback's line numbers are the page's.
        compiled = compile("\n" * (line - 1) + code, str(path), "exec")
        exec(compiled, namespace)


@pytest.fixture
def in_tmp_dir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    return tmp_path


# Pages without python blocks have nothing to run (test_the_pages_with_examples_have_python_blocks
# keeps a page from losing its blocks unnoticed).
PAGES_WITH_CODE = [p for p in PAGES if python_blocks(p.read_text(encoding="utf-8"))]


@pytest.mark.parametrize("path", PAGES_WITH_CODE, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_python_blocks_run(path, in_tmp_dir):
    if path.name in SETUP:
        SETUP[path.name]()
    run_page(path)


def test_the_pages_with_examples_have_python_blocks():
    # A fence the extraction no longer recognised would skip a page silently.
    for name in ("getting-started.md", "lesson.md", "activation.md", "curves.md",
                 "breakpoints.md", "distributed.md", "../README.md"):
        assert python_blocks((ROOT / "docs" / name).read_text(encoding="utf-8")), name


def test_a_failing_block_fails_with_its_page_and_line(in_tmp_dir):
    page = in_tmp_dir / "page.md"
    page.write_text("# A page\n\n```sh\nnot python at all\n```\n\n```python\nx = 1\n```\n\n"
                    "```python\nassert x == 2, 'x is 1'\n```\n", encoding="utf-8")
    with pytest.raises(AssertionError, match="x is 1") as failure:
        run_page(page)
    where = failure.traceback[-1]
    assert Path(where.path) == page and where.lineno + 1 == 12


def _modules():
    names = [relu_ext.__name__]
    for info in pkgutil.walk_packages(relu_ext.__path__, relu_ext.__name__ + "."):
        if not info.name.endswith("__main__"):  # `python -m relu_ext`: runs the command line
            names.append(info.name)
    return names


@pytest.mark.parametrize("name", _modules())
def test_docstring_examples_run(name, in_tmp_dir):
    module = importlib.import_module(name)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    report = []
    for test in doctest.DocTestFinder().find(module, name):
        runner.run(test, out=report.append)
    assert runner.failures == 0, "".join(report)
