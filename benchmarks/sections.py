"""RESULTS.md has several authors: run.py writes the page, and each focused
script (call_overhead.py, ...) owns one section of it, between markers that
name the script. run.py keeps those sections when it rewrites the page, so
every figure stays with the script that measured it."""

import re
from pathlib import Path

_BEGIN = "<!-- section {name}: written by benchmarks/{name}.py; do not edit by hand -->"
_END = "<!-- end of section {name} -->"
_SECTION = re.compile(r"<!-- section (?P<name>\w+): .*?<!-- end of section (?P=name) -->\n?", re.S)


def sections(text):
    """The marked sections of a page, in order, each as its full text."""
    return [match.group(0).rstrip("\n") for match in _SECTION.finditer(text)]


def write_section(path, name, body):
    """Puts `body` (markdown) into the page at `path` as section `name`,
    replacing the section's old text or appending it."""
    path = Path(path)
    block = "\n".join([_BEGIN.format(name=name), body.rstrip("\n"), _END.format(name=name)])
    text = path.read_text() if path.exists() else ""
    pattern = re.compile(re.escape(_BEGIN.format(name=name)) + r".*?" + re.escape(_END.format(name=name)), re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _: block, text)
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(text)
