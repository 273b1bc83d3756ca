#!/usr/bin/env python3
"""Per folder and per module of a Python package: lines, functions, the longest function (qualified name,
lines from `def` to its last line, decorators excluded) and the highest McCabe complexity.

Complexity: ruff's C901 with max-complexity 0 (so every function is reported with its value):
    ruff check --isolated --ignore-noqa --select C901 --config 'lint.mccabe.max-complexity=0' --output-format json PKGDIR
ruff is looked for next to this python (the venv's bin), then on PATH; without ruff the `mccabe` package is used.

Usage: <venv>/bin/python tree_stats.py PKGDIR [PKGDIR...]
"""
import ast
import json
import os
import shutil
import subprocess
import sys
from collections import defaultdict
from pathlib import Path


def functions(tree: ast.AST):
    """(qualified name, node) of every function/method, nested ones included."""
    out = []

    def walk(node, prefix):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                q = f"{prefix}{child.name}"
                out.append((q, child))
                walk(child, q + ".")
            elif isinstance(child, ast.ClassDef):
                walk(child, f"{prefix}{child.name}.")
            else:
                walk(child, prefix)

    walk(tree, "")
    return out


def complexity_ruff(ruff: str, root: Path) -> dict[tuple[str, int], int]:
    proc = subprocess.run([ruff, "check", "--isolated", "--ignore-noqa", "--select", "C901", "--config",
                           "lint.mccabe.max-complexity=0", "--output-format", "json", str(root)],
                          capture_output=True, text=True)
    out = {}
    for d in json.loads(proc.stdout or "[]"):
        value = int(d["message"].rsplit("(", 1)[1].split(">")[0])
        out[(os.path.realpath(d["filename"]), d["location"]["row"])] = value
    return out


def complexity_mccabe(files: list[Path]) -> dict[tuple[str, int], int]:
    import mccabe

    out = {}
    for f in files:
        tree = compile(f.read_text(), str(f), "exec", ast.PyCF_ONLY_AST)
        visitor = mccabe.PathGraphingAstVisitor()
        visitor.preorder(tree, visitor)
        for graph in visitor.graphs.values():
            out[(os.path.realpath(f), graph.lineno)] = graph.complexity()
    return out


def main() -> None:
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    for arg in sys.argv[1:]:
        root = Path(arg).resolve()
        files = sorted(p for p in root.rglob("*.py") if "__pycache__" not in p.parts)
        cx = complexity_ruff(ruff, root) if ruff else complexity_mccabe(files)
        tool = f"ruff {subprocess.run([ruff, '--version'], capture_output=True, text=True).stdout.split()[-1]}" if ruff else "mccabe"
        modules = []
        allcx = []
        for f in files:
            text = f.read_text()
            tree = ast.parse(text)
            funcs = functions(tree)
            longest = max(((n, node.end_lineno - node.lineno + 1) for n, node in funcs), key=lambda x: x[1], default=("-", 0))
            cxs = []
            for n, node in funcs:
                # ruff reports the row of the `def` name (decorators excluded), as does ast's lineno
                v = cx.get((os.path.realpath(f), node.lineno))
                if v is not None:
                    cxs.append((n, v))
                    allcx.append((v, f"{f.relative_to(root.parent)}:{n}", node.end_lineno - node.lineno + 1))
            worst = max(cxs, key=lambda x: x[1], default=("-", 0))
            lines = text.count("\n") + (0 if text.endswith("\n") or not text else 1)
            sloc = sum(1 for ln in text.splitlines() if ln.strip() and not ln.strip().startswith("#"))
            modules.append({"path": f.relative_to(root.parent), "folder": f.parent.relative_to(root.parent),
                            "lines": lines, "sloc": sloc, "nfunc": len(funcs), "longest": longest, "worst": worst,
                            "over10": sum(1 for _, v in cxs if v > 10), "over20": sum(1 for _, v in cxs if v > 20)})

        print(f"# {root}  (complexity: {tool}; lines = physical lines, sloc = non-blank non-comment lines;")
        print("#  function length = `def` line to last line; cx>10 / cx>20 = functions over that McCabe complexity)")
        print()
        print("## per folder (modules directly in it)")
        hdr = f"{'folder':32s} {'files':>5s} {'lines':>6s} {'sloc':>6s} {'funcs':>5s} {'cx>10':>5s} {'cx>20':>5s}  longest function (lines)  |  most complex function (McCabe)"
        print(hdr)
        by = defaultdict(list)
        for m in modules:
            by[m["folder"]].append(m)
        for folder, ms in sorted(by.items()) + [(Path("TOTAL"), modules)]:
            lm = max(ms, key=lambda m: m["longest"][1])
            wm = max(ms, key=lambda m: m["worst"][1])
            print(f"{str(folder):32s} {len(ms):5d} {sum(m['lines'] for m in ms):6d} {sum(m['sloc'] for m in ms):6d} "
                  f"{sum(m['nfunc'] for m in ms):5d} {sum(m['over10'] for m in ms):5d} {sum(m['over20'] for m in ms):5d}  "
                  f"{lm['path'].name}:{lm['longest'][0]} ({lm['longest'][1]})  |  {wm['path'].name}:{wm['worst'][0]} ({wm['worst'][1]})")
        print()
        print("## per module")
        print(f"{'module':40s} {'lines':>6s} {'sloc':>6s} {'funcs':>5s} {'cx>10':>5s} {'cx>20':>5s}  longest function (lines)  |  most complex (McCabe)")
        for m in modules:
            print(f"{str(m['path']):40s} {m['lines']:6d} {m['sloc']:6d} {m['nfunc']:5d} {m['over10']:5d} {m['over20']:5d}  "
                  f"{m['longest'][0]} ({m['longest'][1]})  |  {m['worst'][0]} ({m['worst'][1]})")
        print()
        print("## the 10 most complex functions (McCabe, lines)")
        for v, name, n in sorted(allcx, key=lambda x: (-x[0], x[1]))[:10]:
            print(f"{v:4d}  {n:4d}  {name}")
        print()


if __name__ == "__main__":
    main()
