#!/usr/bin/env python3
"""Report import cycles between the top-level modules of the library crate in src/.

Run from the repository root:

    python3 .ci/import-cycles.py            # check ./src
    python3 .ci/import-cycles.py --edges    # also list every edge with one file:line
    python3 .ci/import-cycles.py --src DIR  # check another source folder
    python3 .ci/import-cycles.py --self-test

A top-level module is src/<name>.rs or the folder src/<name>/ (both together when a crate
uses src/<name>.rs next to src/<name>/). src/main.rs, src/lib.rs and src/bin/ are ignored.

An edge A -> B exists when a file of A names another top-level module B through
  * crate::B            in `use crate::B...`, in the first level of a use group
                        (`use crate::{B, C::{x, y}}`), or inline (`crate::B::f()`); also
                        `$crate::B` in macro bodies (counted where the macro is written)
  * super::B, super::super::B, ...  when the `super` chain climbs from the file's module
                        (including inline `mod name { ... }` blocks such as `mod tests`)
                        up to the crate root, then names B (directly or in a use group)
`crate::X` where X is not a top-level module (an item re-exported from lib.rs) and globs
such as `use super::*` at the root make no edge.

Comments (//, ///, //!, nested /* */) and string, byte-string, raw-string and char literals
are skipped by a small tokenizer, so their text never makes an edge. Code under
#[cfg(test)] is NOT excluded: a test module's imports are real imports of its file.

Output: every strongly connected component with more than one module, with each edge
inside it and one file:line creating it, and exit status 1; otherwise
"no import cycles between top-level modules (N modules, M edges)" and exit status 0.
Exit status 2 on usage errors. Python 3 standard library only.
"""

import os
import sys
import tempfile

# --------------------------------------------------------------------------- tokenizer

IDENT_START = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_")
IDENT_CONT = IDENT_START | set("0123456789")


def _skip_raw_string(src, i, n):
    """src[i] is 'r' of r"..." / r#"..."#; return the index after the literal, or None."""
    j = i + 1
    hashes = 0
    while j < n and src[j] == "#":
        hashes += 1
        j += 1
    if j >= n or src[j] != '"':
        return None
    end = '"' + "#" * hashes
    k = src.find(end, j + 1)
    return n if k < 0 else k + len(end)


def _skip_string(src, i, n):
    """src[i] is the opening quote of "..."; return the index after the closing quote."""
    j = i + 1
    while j < n:
        c = src[j]
        if c == "\\":
            j += 2
            continue
        if c == '"':
            return j + 1
        j += 1
    return n


def tokenize(src):
    """Yield (kind, text, line) for identifiers ('id') and punctuation ('p').

    Comments, string/char literals, lifetimes and numbers are dropped. '::' is one token.
    """
    i, n, line = 0, len(src), 1
    out = []
    while i < n:
        c = src[i]
        if c == "\n":
            line += 1
            i += 1
            continue
        if c in " \t\r":
            i += 1
            continue
        # comments
        if c == "/" and i + 1 < n and src[i + 1] == "/":
            k = src.find("\n", i)
            i = n if k < 0 else k
            continue
        if c == "/" and i + 1 < n and src[i + 1] == "*":
            depth, j = 1, i + 2
            while j < n and depth:
                if src.startswith("/*", j):
                    depth += 1
                    j += 2
                elif src.startswith("*/", j):
                    depth -= 1
                    j += 2
                else:
                    j += 1
            line += src.count("\n", i, j)
            i = j
            continue
        # string-like literals with a prefix: r"", r#""#, b"", br"", c"", cr"", b''
        if c in "rbc":
            j = None
            if c == "r" and i + 1 < n and src[i + 1] in '#"':
                if src.startswith("r#", i) and i + 2 < n and src[i + 2] in IDENT_START:
                    # raw identifier r#name
                    k = i + 2
                    while k < n and src[k] in IDENT_CONT:
                        k += 1
                    out.append(("id", src[i + 2:k], line))
                    i = k
                    continue
                j = _skip_raw_string(src, i, n)
            elif c in "bc" and i + 1 < n and src[i + 1] == "r" and i + 2 < n and src[i + 2] in '#"':
                j = _skip_raw_string(src, i + 1, n)
            elif c in "bc" and i + 1 < n and src[i + 1] == '"':
                j = _skip_string(src, i + 1, n)
            elif c == "b" and i + 1 < n and src[i + 1] == "'":
                k = i + 2
                while k < n and src[k] != "'":
                    k += 2 if src[k] == "\\" else 1
                j = k + 1
            if j is not None:
                line += src.count("\n", i, j)
                i = j
                continue
        if c == '"':
            j = _skip_string(src, i, n)
            line += src.count("\n", i, j)
            i = j
            continue
        if c == "'":
            # char literal ('a', '\n', '\'', '\u{..}') or lifetime / label ('a, 'static)
            if i + 1 < n and src[i + 1] == "\\":
                k = i + 2
                while k < n and src[k] != "'" and src[k] != "\n":
                    k += 1
                i = k + 1
                continue
            if i + 2 < n and src[i + 2] == "'":
                i += 3
                continue
            i += 1  # lifetime: drop the quote, the name becomes a harmless identifier
            k = i
            while k < n and src[k] in IDENT_CONT:
                k += 1
            i = k
            continue
        if c in IDENT_START:
            k = i + 1
            while k < n and src[k] in IDENT_CONT:
                k += 1
            out.append(("id", src[i:k], line))
            i = k
            continue
        if c.isdigit():
            k = i + 1
            while k < n and (src[k] in IDENT_CONT or (src[k] == "." and k + 1 < n and src[k + 1].isdigit())):
                k += 1
            i = k
            continue
        if c == ":" and i + 1 < n and src[i + 1] == ":":
            out.append(("p", "::", line))
            i += 2
            continue
        out.append(("p", c, line))
        i += 1
    return out


# --------------------------------------------------------------------------- analysis

def top_level_modules(src_dir):
    mods = set()
    for name in sorted(os.listdir(src_dir)):
        path = os.path.join(src_dir, name)
        if os.path.isdir(path):
            if name != "bin" and not name.startswith("."):
                mods.add(name)
        elif name.endswith(".rs") and name not in ("main.rs", "lib.rs"):
            mods.add(name[:-3])
    return mods


def module_files(src_dir, mod):
    """(path, module path as a list of segments) of every .rs file of top-level module mod."""
    files = []
    flat = os.path.join(src_dir, mod + ".rs")
    if os.path.isfile(flat):
        files.append((flat, [mod]))
    folder = os.path.join(src_dir, mod)
    if os.path.isdir(folder):
        for root, dirs, names in os.walk(folder):
            dirs.sort()
            for name in sorted(names):
                if not name.endswith(".rs"):
                    continue
                full = os.path.join(root, name)
                rel = os.path.relpath(full, src_dir)[:-3].split(os.sep)
                if rel[-1] == "mod":
                    rel = rel[:-1]
                files.append((full, rel))
    return files


def group_heads(toks, i):
    """toks[i] is '{' of a use group: return [(name, line)] of the first segment of each entry."""
    heads, depth, expect_head = [], 0, True
    j = i
    while j < len(toks):
        kind, text, line = toks[j]
        if text == "{":
            depth += 1
            if depth == 1:
                expect_head = True
                j += 1
                continue
        elif text == "}":
            depth -= 1
            if depth == 0:
                break
        elif text == "," and depth == 1:
            expect_head = True
            j += 1
            continue
        if depth == 1 and expect_head:
            if kind == "id":
                heads.append((text, line))
            expect_head = False
        j += 1
    return heads


def references(toks, mod_path):
    """Yield (top-level name, line) of every crate-root-relative path in the token list."""
    inline = []  # stack of (depth at which the inline module's body opened)
    extra = []   # inline module names, parallel to `inline`
    depth = 0
    n = len(toks)
    for i, (kind, text, line) in enumerate(toks):
        if text == "{":
            depth += 1
            continue
        if text == "}":
            depth -= 1
            while inline and depth < inline[-1]:
                inline.pop()
                extra.pop()
            continue
        if kind != "id":
            continue
        if text == "mod" and i + 2 < n and toks[i + 1][0] == "id" and toks[i + 2][1] == "{":
            # the body opens at toks[i+2]; it is in effect while depth >= depth+1
            inline.append(depth + 1)
            extra.append(toks[i + 1][1])
            continue
        after = None  # index of the token after the root-relative '::'
        if text == "crate" and i + 1 < n and toks[i + 1][1] == "::":
            prev = toks[i - 1][1] if i > 0 else ""
            if prev != "::":
                after = i + 2
        elif text == "super" and i + 1 < n and toks[i + 1][1] == "::":
            prev = toks[i - 1][1] if i > 0 else ""
            if prev == "::":
                continue  # inside a chain already handled from its first `super`
            j, ups = i, 0
            while j + 1 < n and toks[j][1] == "super" and toks[j + 1][1] == "::":
                ups += 1
                j += 2
            here = list(mod_path) + list(extra)
            if ups > len(here):
                continue  # climbs above the crate root: not valid Rust, ignore
            if len(here) - ups == 0:
                after = j
        if after is None or after >= n:
            continue
        kind2, text2, line2 = toks[after]
        if kind2 == "id":
            yield text2, line2
        elif text2 == "{":
            for head, hline in group_heads(toks, after):
                yield head, hline


def build_graph(src_dir):
    mods = top_level_modules(src_dir)
    edges = {}  # (a, b) -> list of "file:line"
    for a in sorted(mods):
        for path, mod_path in module_files(src_dir, a):
            with open(path, encoding="utf-8", errors="replace") as f:
                toks = tokenize(f.read())
            for b, line in references(toks, mod_path):
                if b in mods and b != a:
                    edges.setdefault((a, b), []).append(f"{path}:{line}")
    return mods, edges


def strongly_connected(mods, edges):
    succ = {m: sorted({b for (a, b) in edges if a == m}) for m in mods}
    index, low, on_stack, stack, comps = {}, {}, set(), [], []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in succ[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            comps.append(sorted(comp))

    sys.setrecursionlimit(max(1000, 4 * len(mods) + 100))
    for m in sorted(mods):
        if m not in index:
            visit(m)
    return sorted((c for c in comps if len(c) > 1), key=lambda c: (-len(c), c))


def shortest_cycle(comp, edges):
    """One shortest cycle through the component's first module, as a list of names."""
    members = set(comp)
    start = comp[0]
    prev = {start: None}
    queue = [start]
    while queue:
        nxt = []
        for v in queue:
            for (a, b) in sorted(edges):
                if a != v or b not in members:
                    continue
                if b == start:
                    path = [v]
                    while prev[path[-1]] is not None:
                        path.append(prev[path[-1]])
                    return list(reversed(path)) + [start]
                if b not in prev:
                    prev[b] = v
                    nxt.append(b)
        queue = nxt
    return [start]


def report(src_dir, show_edges=False, out=sys.stdout):
    mods, edges = build_graph(src_dir)
    comps = strongly_connected(mods, edges)
    if show_edges:
        print(f"edges between top-level modules of {src_dir}:", file=out)
        for (a, b) in sorted(edges):
            locs = edges[(a, b)]
            more = f" (+{len(locs) - 1} more)" if len(locs) > 1 else ""
            print(f"  {a} -> {b}  {locs[0]}{more}", file=out)
    if not comps:
        print(f"no import cycles between top-level modules ({len(mods)} modules, {len(edges)} edges)", file=out)
        return 0
    print(f"import cycles between top-level modules of {src_dir} "
          f"({len(mods)} modules, {len(edges)} edges, {len(comps)} cycle group(s)):", file=out)
    for k, comp in enumerate(comps, 1):
        inside = sorted((a, b) for (a, b) in edges if a in comp and b in comp)
        print(f"cycle group {k}: {len(comp)} modules: {', '.join(comp)}", file=out)
        print(f"  e.g. {' -> '.join(shortest_cycle(comp, edges))}", file=out)
        for (a, b) in inside:
            locs = edges[(a, b)]
            more = f" (+{len(locs) - 1} more)" if len(locs) > 1 else ""
            print(f"  {a} -> {b}  {locs[0]}{more}", file=out)
    return 1


# --------------------------------------------------------------------------- self-test

def _write(root, rel, text):
    path = os.path.join(root, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


# Text that must never create an edge (to `alpha`): comments, strings, chars, lifetimes.
DECOYS = r'''
// use crate::alpha;
/// crate::alpha::f
//! super::alpha
/* use crate::alpha; /* nested crate::alpha */ still a comment crate::alpha */
pub fn decoys<'a>(x: &'a str) -> usize {
    let s = "use crate::alpha; \" crate::alpha";
    let r = r#"crate::alpha "quoted" super::alpha"#;
    let b = b"crate::alpha";
    let c = '"'; let d = '\''; let e = b'"';
    let t = "a // not a comment"; let u = crate_alpha(); // crate::alpha
    'outer: loop { break 'outer; }
    s.len() + r.len() + b.len() + x.len() + t.len() + u + (c as usize) + (d as usize) + (e as usize)
}
fn crate_alpha() -> usize { 0 }
pub(crate) fn vis() {}
pub(super) fn vis2() {}
'''


def _tree_with_cycle(root):
    src = os.path.join(root, "src")
    _write(src, "lib.rs", "pub mod alpha; pub mod beta; pub mod gamma; pub mod delta; pub mod eps;\n")
    _write(src, "main.rs", "use crate::alpha; fn main() {}\n")          # ignored
    _write(src, "bin/tool/main.rs", "use crate::beta; fn main() {}\n")  # ignored
    # alpha -> beta through a nested use group
    _write(src, "alpha/mod.rs", "mod inner;\nuse crate::{self as me, beta::{Thing, other::{X}}};\n")
    # alpha -> delta through super::super from a nested file
    _write(src, "alpha/inner.rs", "pub fn f() { super::super::delta::g(); }\n")
    # beta -> gamma through an inline path, beta/other.rs exists as a nested module
    _write(src, "beta.rs", "pub mod other;\npub struct Thing;\npub fn h() -> u32 { crate::gamma::K }\n")
    _write(src, "beta/other.rs", "pub struct X;\n")
    # gamma -> alpha only from a #[cfg(test)] inline module, via super::super
    _write(src, "gamma.rs", "pub const K: u32 = 1;\n#[cfg(test)]\nmod tests {\n    use super::super::alpha;\n}\n")
    # delta -> eps (no cycle back), eps has only decoys
    _write(src, "delta/mod.rs", "pub fn g() {}\nuse crate::eps as _e;\n")
    _write(src, "eps.rs", DECOYS)
    return src


def _tree_without_cycle(root):
    src = os.path.join(root, "src")
    _write(src, "lib.rs", "pub mod alpha; pub mod beta; pub mod gamma;\npub use alpha::Thing;\n")
    _write(src, "alpha.rs", "pub struct Thing;\nuse crate::{beta, gamma::K};\n")
    _write(src, "beta/mod.rs", "mod sub; mod alpha;\npub fn b() -> u32 { crate::gamma::K }\n" + DECOYS)
    # super::Thing from beta/sub.rs stays inside beta; crate::Thing is not a module
    # super::alpha from beta/sub.rs is beta's own submodule beta::alpha, not the top-level alpha
    _write(src, "beta/sub.rs", "use super::b; use super::alpha::Y; use crate::Thing; use super::super::gamma;\n"
           "#[cfg(test)]\nmod tests { use super::*; use super::super::b as _; use super::super::alpha::Y as _; }\n")
    _write(src, "beta/alpha.rs", "pub struct Y;\n")
    # inside gamma's inline test module, super::alpha is gamma::alpha
    _write(src, "gamma.rs", "pub const K: u32 = 2;\nmod alpha {}\n#[cfg(test)]\nmod tests { use super::alpha; }\n" + DECOYS)
    return src


def self_test():
    failures = []

    def expect(cond, what):
        if not cond:
            failures.append(what)

    with tempfile.TemporaryDirectory(prefix="import-cycles-") as tmp:
        src = _tree_with_cycle(os.path.join(tmp, "cyclic"))
        mods, edges = build_graph(src)
        expect(mods == {"alpha", "beta", "gamma", "delta", "eps"}, f"cyclic tree modules: {sorted(mods)}")
        want = {("alpha", "beta"), ("alpha", "delta"), ("beta", "gamma"), ("gamma", "alpha"), ("delta", "eps")}
        expect(set(edges) == want, f"cyclic tree edges: got {sorted(edges)}, want {sorted(want)}")
        expect(edges.get(("gamma", "alpha"), [""])[0].endswith("gamma.rs:4"),
               f"gamma -> alpha location: {edges.get(('gamma', 'alpha'))}")
        comps = strongly_connected(mods, edges)
        expect(comps == [["alpha", "beta", "gamma"]], f"cyclic tree components: {comps}")
        with open(os.devnull, "w") as null:
            expect(report(src, out=null) == 1, "cyclic tree verdict must be exit 1")

        src = _tree_without_cycle(os.path.join(tmp, "acyclic"))
        mods, edges = build_graph(src)
        want = {("alpha", "beta"), ("alpha", "gamma"), ("beta", "gamma")}
        expect(set(edges) == want, f"acyclic tree edges: got {sorted(edges)}, want {sorted(want)}")
        with open(os.devnull, "w") as null:
            expect(report(src, out=null) == 0, "acyclic tree verdict must be exit 0")

    toks = [t[1] for t in tokenize(DECOYS)]
    expect("alpha" not in toks, f"decoy text leaked identifiers: {toks}")

    if failures:
        for f in failures:
            print(f"self-test FAILED: {f}", file=sys.stderr)
        return 1
    print("self-test passed (cyclic tree: 1 cycle of 3 modules found; acyclic tree: no cycle; decoys ignored)")
    return 0


def main(argv):
    args = argv[1:]
    if "-h" in args or "--help" in args:
        print(__doc__)
        return 0
    if "--self-test" in args:
        return self_test()
    src_dir, show_edges = "src", False
    while args:
        a = args.pop(0)
        if a == "--edges":
            show_edges = True
        elif a == "--src" and args:
            src_dir = args.pop(0)
        else:
            print(f"import-cycles.py: unknown argument {a!r} (see --help)", file=sys.stderr)
            return 2
    if not os.path.isdir(src_dir):
        print(f"import-cycles.py: no {src_dir}/ here; run from the repository root", file=sys.stderr)
        return 2
    return report(src_dir, show_edges)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
