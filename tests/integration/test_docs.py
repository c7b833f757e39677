"""The repository's text describes the code as it is, and its pointers to documents resolve.

  1. No issue numbers, work-item labels (an H and a digit), references to the work assignment or
     to who assigned it, paths on a development machine ("/work/main") or the scale-out notes'
     old name in any source, script, test, document, config or packaging file: such text says
     where a change came from, which the history already records, instead of what the code does.
  2. Every pointer to a repository document resolves: a Markdown file (`docs/SCALE-OUT.md`,
     `RESULTS.md`, `[text](SCALE-OUT.md#anchor)`) names a file that exists, a man page
     (`l4lb.toml(5)`) has its source docs/man/l4lb.toml.5.scd, and a section quoted after it
     (`SCALE-OUT.md, "BGP"`, `RESULTS.md ("Idle back-off")`, `README.md's "Status"`) is a
     heading of that file (or the start of one, up to a word boundary).

Each failure lists every offending line as path:line. No build is needed. Run alone:
  cd tests/integration && python3 -m unittest -v test_docs
"""
import os
import re
import unittest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# What is checked; L4LB_DOCS_ROOTS (space-separated, relative to the repository) narrows it, e.g.
# to the part one is cleaning. References resolve against the whole repository either way.
ROOTS = os.environ.get("L4LB_DOCS_ROOTS", "").split() or [
    "src", "include", "tests", "scripts", "perf", "docs", "config", "dist", "debian", "README.md",
    "meson.build", "meson_options.txt"]
SELF = os.path.relpath(os.path.abspath(__file__), REPO)
SKIP_DIRS = {"corpus", "__pycache__", ".git"}  # corpus: fuzz inputs, data not prose

# (pattern, what it is). Built from pieces so that this file does not match itself.
HISTORY = [
    (r"\b[Ii]ssues? #?[0-9]+", "an issue number"),
    (r"\bH[0-9]+\b", "a work-item label"),
    (r"\b[Tt]he [Bb]rie[f]\b|\b[Bb]rie[f]'s\b", "a reference to the work assignment"),
    (r"\b[Cc]oordinato[r]", "a reference to who assigned the work"),
    (r"/work/(?:main|wt)\b", "a path on a development machine"),
    (r"\bSCALE" + "OUT\\b", "the scale-out notes' old name (docs/SCALE-OUT.md)"),
]

# A Markdown document: a path or bare name ending in .md, not part of a longer word, path
# component or option (`-X.md`); optionally with #anchor.
MD_REF = re.compile(r"(?<![\w.-])([\w@<${./][\w@<>{}$./-]*?\.md)(#[\w-]+)?\b")
# A man page of this project: l4lb(8), l4lbctl(8), l4lb.toml(5).
MAN_REF = re.compile(r"\b(l4lb[\w.-]*)\(([1-8])\)")
# Quoted section names right after a reference: `, "A"`, ` ("A", "B")`, `'s "A"`, ` section "A"`,
# ` "A" and "B"`. A quote right after the reference closes a string it is in, and is not one.
QUOTE = r'"([^"\n]+)"'
SECTIONS = re.compile(r"""^(?:'s\s+|,\s*|\s+|\s*\()\(?(?:sections?\s+)?""" + QUOTE + r"""((?:\s*(?:,|and|,\s*and)\s*""" + QUOTE + r""")*)""")


def text_files():
    """(relative path, text) of every text file under ROOTS."""
    for root in ROOTS:
        top = os.path.join(REPO, root)
        if os.path.isfile(top):
            walk = [(REPO, [], [root])]
        elif os.path.isdir(top):
            walk = os.walk(top)
        else:
            continue
        for dirpath, dirnames, filenames in walk:
            dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS)
            for name in sorted(filenames):
                path = os.path.join(dirpath, name)
                rel = os.path.relpath(path, REPO)
                if rel == SELF:
                    continue
                try:
                    with open(path, "rb") as f:
                        data = f.read()
                except OSError:
                    continue
                if b"\0" in data[:8192]:
                    continue  # binary
                try:
                    yield rel, data.decode("utf-8")
                except UnicodeDecodeError:
                    continue


def headings(path):
    """The headings of a Markdown or scdoc file (`#` lines outside fenced code blocks), text only."""
    out, fenced = [], False
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.startswith("```"):
                fenced = not fenced
            elif not fenced:
                m = re.match(r"#+\s+(.*?)\s*#*\s*$", line)
                if m:
                    out.append(m.group(1))
    return out


def slug(heading):
    """GitHub's anchor for a heading."""
    s = re.sub(r"[^\w\- ]", "", heading.lower())
    return s.replace(" ", "-")


def names_heading(quoted, heads):
    """Whether `quoted` is a heading, or the start of one up to a word boundary."""
    for h in heads:
        if h == quoted or (h.startswith(quoted) and not h[len(quoted)].isalnum()):
            return True
    return False


def resolve_md(ref, referrer):
    """The repository file a Markdown reference in `referrer` names, or None."""
    here = os.path.dirname(os.path.join(REPO, referrer))
    if ref.startswith(("/", "@", "<", "$", "{")) or "/share/doc/" in ref:
        ref = os.path.basename(ref)  # an installed copy (/usr/share/doc/l4lb/X.md): the source
    candidates = [os.path.join(here, ref), os.path.join(REPO, ref)]
    if "/" not in ref:  # a bare name: beside the referrer, at the top, in docs/ or perf/
        candidates += [os.path.join(REPO, d, ref) for d in ("docs", "perf")]
    for c in candidates:
        if os.path.isfile(c):
            return c
    return None


class Docs(unittest.TestCase):
    def test_no_history_in_text(self):
        rx = [(re.compile(p), what) for p, what in HISTORY]
        hits = []
        for rel, text in text_files():
            for n, line in enumerate(text.splitlines(), 1):
                for r, what in rx:
                    m = r.search(line)
                    if m:
                        hits.append(f"{rel}:{n}: {what} ({m.group(0)!r}): {line.strip()[:160]}")
        if hits:
            self.fail(f"{len(hits)} lines name where a change came from instead of what it is:\n" + "\n".join(hits))

    def test_document_references_resolve(self):
        bad, heads = [], {}

        def check_sections(rel, n, target, rest):
            m = SECTIONS.match(rest)
            if not m:
                return
            quoted = [m.group(1)] + re.findall(QUOTE, m.group(2) or "")
            if target not in heads:
                heads[target] = headings(target)
            for q in quoted:
                if not names_heading(q, heads[target]):
                    bad.append(f"{rel}:{n}: {os.path.relpath(target, REPO)} has no section \"{q}\"")

        for rel, text in text_files():
            for n, line in enumerate(text.splitlines(), 1):
                for m in MD_REF.finditer(line):
                    ref, anchor = m.group(1), m.group(2)
                    if any(c in ref for c in "*{}") or ref.endswith("NAME.md"):
                        continue  # a pattern, not a reference
                    target = resolve_md(ref, rel)
                    if target is None:
                        bad.append(f"{rel}:{n}: no such document {ref}")
                        continue
                    if anchor:
                        if target not in heads:
                            heads[target] = headings(target)
                        if anchor[1:] not in {slug(h) for h in heads[target]}:
                            bad.append(f"{rel}:{n}: {os.path.relpath(target, REPO)} has no heading for {anchor}")
                    check_sections(rel, n, target, line[m.end():])
                for m in MAN_REF.finditer(line):
                    if rel.endswith(".scd") and n == 1:
                        continue  # the page's own title line
                    src = os.path.join(REPO, "docs", "man", f"{m.group(1)}.{m.group(2)}.scd")
                    if not os.path.isfile(src):
                        bad.append(f"{rel}:{n}: no man page source docs/man/{m.group(1)}.{m.group(2)}.scd "
                                   f"for {m.group(0)}")
                        continue
                    check_sections(rel, n, src, line[m.end():])
        if bad:
            self.fail(f"{len(bad)} references to documents do not resolve:\n" + "\n".join(bad))


if __name__ == "__main__":
    unittest.main()
