#!/usr/bin/env python3
"""Replace one marked section of a Markdown file in a single quick step.

usage: scripts/section.py FILE NAME < new-section-body.md

The section is the text between `<!-- section:NAME -->` and `<!-- end:NAME -->`;
the markers stay. Used so that several areas can update docs/DESIGN.md and
docs/BENCHMARKS.md independently.
"""
import sys, re, os, tempfile

path, name = sys.argv[1], sys.argv[2]
body = sys.stdin.read().strip("\n")
with open(path) as f:
    text = f.read()
start, end = f"<!-- section:{name} -->", f"<!-- end:{name} -->"
if start not in text or end not in text:
    sys.exit(f"section {name} not found in {path}")
pat = re.compile(re.escape(start) + r".*?" + re.escape(end), re.S)
text = pat.sub(lambda _m: f"{start}\n{body}\n{end}", text, count=1)
fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(path)))
with os.fdopen(fd, "w") as f:
    f.write(text)
os.replace(tmp, path)
