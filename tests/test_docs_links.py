"""Every relative link and image of the repository's Markdown files resolves to a file (or folder)
of the repository, and every `#anchor` of such a link to a heading of the Markdown file it names."""

import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
FENCE = re.compile(r"^(```|~~~)")


def markdown_files():
    listed = subprocess.run(["git", "-C", ROOT, "ls-files", "*.md"], capture_output=True, text=True)
    if listed.returncode:
        pytest.skip("not a git checkout")
    return [name for name in listed.stdout.split() if os.path.exists(os.path.join(ROOT, name))]


def prose_lines(path):
    """The lines of a Markdown file outside fenced code blocks (a link in code is not a link)."""
    inside = False
    with open(path, encoding="utf-8") as f:
        for line in f:
            if FENCE.match(line.strip()):
                inside = not inside
            elif not inside:
                yield line


def anchors(path):
    """GitHub's anchors of a Markdown file's headings: lower case, punctuation dropped, spaces to '-'."""
    out = set()
    for line in prose_lines(path):
        if line.startswith("#"):
            text = line.lstrip("#").strip().lower()
            out.add(re.sub(r"[^\w\- ]", "", text).replace(" ", "-"))
    return out


def relative_links(path):
    for line in prose_lines(path):
        for target in LINK.findall(line):
            if not re.match(r"^[a-z]+:", target):  # http:, https:, mailto:
                yield target


def broken_links():
    broken = []
    for name in markdown_files():
        path = os.path.join(ROOT, name)
        for target in relative_links(path):
            file_part, _, anchor = target.partition("#")
            resolved = os.path.normpath(os.path.join(os.path.dirname(path), file_part)) if file_part else path
            if not os.path.exists(resolved):
                broken.append(f"{name}: {target} (no {os.path.relpath(resolved, ROOT)})")
            elif anchor and resolved.endswith(".md") and anchor not in anchors(resolved):
                broken.append(f"{name}: {target} (no heading #{anchor} in {os.path.relpath(resolved, ROOT)})")
    return broken


def test_every_relative_link_and_image_resolves():
    assert broken_links() == []


def test_a_broken_link_is_found(tmp_path, monkeypatch):
    """The checker itself: a missing file, a missing anchor, a link inside code ignored."""
    (tmp_path / "a.md").write_text("# Title here\n[ok](b.md#sub-part) [gone](missing.png) [bad](#nowhere)\n"
                                   "```\n[code](not/checked.md)\n```\n![img](b.md)\n")
    (tmp_path / "b.md").write_text("## Sub part\n")
    module = sys.modules[__name__]
    monkeypatch.setattr(module, "ROOT", str(tmp_path))
    monkeypatch.setattr(module, "markdown_files", lambda: ["a.md", "b.md"])
    assert broken_links() == ["a.md: missing.png (no missing.png)", "a.md: #nowhere (no heading #nowhere in a.md)"]
