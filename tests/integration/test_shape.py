"""The source tree keeps the shape docs/HACKING.md describes:

  1. No .cc file under src/ is over 600 lines and no header under src/ or include/ over 400,
     unless its first comment says why (a line containing "longer than").
  2. No function of the data path (src/dataplane) takes more than 8 parameters: a per-packet
     function that needs another fact of the packet takes it from the packet context
     (packet_ctx.h), not from a longer signature.

Each failure lists every offending file or function as path:line. No build is needed. Run alone:
  cd tests/integration && python3 -m unittest -v test_shape
"""
import glob
import os
import re
import unittest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MAX_CC, MAX_H, MAX_PARAMS = 600, 400, 8
KEYWORDS = {"if", "for", "while", "switch", "return", "sizeof", "alignof", "alignas", "decltype",
            "static_assert", "catch", "defined", "__attribute__", "noexcept", "requires"}


def sources(*patterns):
    out = []
    for p in patterns:
        out += glob.glob(os.path.join(REPO, p), recursive=True)
    return sorted(out)


def without_comments(text):
    """Comments and string literals blanked, line breaks kept (so line numbers stay right)."""
    text = re.sub(r"/\*.*?\*/", lambda m: "\n" * m.group(0).count("\n"), text, flags=re.S)
    text = re.sub(r"//[^\n]*", "", text)
    return re.sub(r'"(?:\\.|[^"\\\n])*"', '""', text)


def top_level_commas(args):
    depth = angle = commas = 0
    for ch in args:
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == "<":
            angle += 1
        elif ch == ">":
            angle = max(0, angle - 1)
        elif ch == "," and depth == 0 and angle == 0:
            commas += 1
    return commas


def functions(text):
    """(name, parameter count, line) of every function declared or defined in C++ `text`: a name
    after a type-like token, its parenthesised list, then a body, `;`, a qualifier or an
    initialiser list. Calls are passed over (they follow an operator, `return` or `(`)."""
    s = without_comments(text)
    for m in re.finditer(r"\b([A-Za-z_]\w*)\s*\(", s):
        name = m.group(1)
        if name in KEYWORDS:
            continue
        before = s[max(0, m.start() - 80):m.start()].rstrip()
        if not re.search(r"(\w|[>&*])$", before) or re.search(r"\b(return|else|new|case|delete|throw|co_return)$", before):
            continue
        depth, j = 1, m.end()
        while j < len(s) and depth:
            depth += {"(": 1, ")": -1}.get(s[j], 0)
            j += 1
        args = s[m.end():j - 1].strip()
        if not re.match(r"\s*(const\s*)?(noexcept\s*)?(override\s*)?(->[^{;]*)?(\{|;|:\s*\w)", s[j:j + 200]):
            continue
        n = 0 if args in ("", "void") else top_level_commas(args) + 1
        yield name, n, s.count("\n", 0, m.start()) + 1


class Shape(unittest.TestCase):
    def test_file_sizes(self):
        over = []
        for path in sources("src/**/*.cc", "src/**/*.h", "include/**/*.h"):
            limit = MAX_CC if path.endswith(".cc") else MAX_H
            with open(path) as f:
                text = f.read()
            lines = text.count("\n")
            first_comment = re.match(r"((?:\s*//[^\n]*\n)+)", text)
            if lines > limit and not (first_comment and "longer than" in first_comment.group(1)):
                over.append(f"{os.path.relpath(path, REPO)}: {lines} lines (at most {limit})")
        self.assertFalse(over, "files over their size, without a first comment that says why:\n" + "\n".join(over))
        self.assertGreater(len(sources("src/dataplane/*.cc")), 5)  # the glob found the tree

    def test_data_path_parameters(self):
        wide, seen = [], 0
        for path in sources("src/dataplane/**/*.h", "src/dataplane/**/*.cc"):
            with open(path) as f:
                for name, n, line in functions(f.read()):
                    seen += 1
                    if n > MAX_PARAMS:
                        wide.append(f"{os.path.relpath(path, REPO)}:{line}: {name} takes {n} parameters")
        self.assertFalse(wide, f"data-path functions with more than {MAX_PARAMS} parameters:\n" + "\n".join(wide))
        self.assertGreater(seen, 100)  # the parser found the functions

    def test_parameter_counter(self):
        """The counter itself, on the forms the data path uses."""
        text = """
// void commented(int a, int b, int c, int d, int e, int f, int g, int h, int i);
template <typename K>
__rte_always_inline uint32_t nine(WorkerState& w, const Snapshot& s, FlatMap<K, V> m, rte_mbuf* p,
                                  uint16_t a, uint32_t b, bool c, const void* d, int (*cb)(int, int)) {
  return call(a, b, c, d, e, f, g, h, i, j);
}
[[gnu::noinline]] void none() const;
int plain(int a, int b) { return a + b; }
"""
        got = {name: (n, line) for name, n, line in functions(text)}
        self.assertEqual(got, {"nine": (9, 4), "none": (0, 8), "plain": (2, 9)})


if __name__ == "__main__":
    unittest.main()
