#!/usr/bin/env python3
"""Evaluate the findings' checks of a reproduction manifest on its own
published values: the reference for qsweep's C++ evaluator.

Usage (from the repository root):

    python3 scripts/lee2024/check_findings.py [experiments/lee2024/manifest.yaml]

Prints one line per check, `supported` or `contradicted` with the numbers
behind it, and one line per finding; exits 1 if any check is contradicted.
Python 3 standard library only: the manifest is read with a small reader for
the YAML subset that scripts/lee2024/make_manifest.py writes (block mappings
and sequences, flow mappings / sequences, plain and double-quoted scalars,
comments). Check semantics (shared with make_manifest.py):

  beats         row a beats row b (a > b) on more than min_fraction (default
                0.5) of `columns` (default: every column both rows have);
                a and b each select exactly one (model, recipe)
  mean_greater  mean over the a cells > mean over the b cells + margin
                (default 0); cells = `columns` (default: every column) of every
                row matched by any selector of the side (values may be globs);
                on: value (the cell) | diff_to_baseline (cell minus the same
                model's fp16 cell of that column; cells without one are left out)

A (model, recipe) pair's cells are the union of its rows of all tables.
"""

import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
sys.dont_write_bytecode = True  # no __pycache__ beside the scripts
sys.path.insert(0, HERE)
from make_manifest import cell_table, evaluate  # noqa: E402


# --------------------------------------------------------------------------
# A reader for the YAML subset of make_manifest.py's output.
def _scalar(s):
    s = s.strip()
    if s.startswith('"'):
        if not s.endswith('"') or len(s) < 2:
            raise ValueError("unterminated string: %r" % s)
        body = s[1:-1]
        return re.sub(r'\\(.)', lambda m: m.group(1), body)
    if s in ("null", "~", ""):
        return None
    if s == "true":
        return True
    if s == "false":
        return False
    if re.match(r"^-?\d+$", s):
        return int(s)
    if re.match(r"^-?\d+\.\d*$", s):
        return float(s)
    return s


def _strip_comment(line):
    out, inq, esc = [], False, False
    for ch in line:
        if inq:
            out.append(ch)
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                inq = False
            continue
        if ch == '"':
            inq = True
        elif ch == "#" and (not out or out[-1] in " \t"):
            break
        out.append(ch)
    return "".join(out).rstrip()


def _flow(s, i):
    """Parse a flow value at s[i:]; return (value, next index)."""
    while i < len(s) and s[i] == " ":
        i += 1
    if s[i] == "{":
        d = {}
        i += 1
        while True:
            while s[i] in " ,":
                i += 1
            if s[i] == "}":
                return d, i + 1
            j = s.index(":", i)
            key = s[i:j].strip()
            v, i = _flow(s, j + 1)
            d[key] = v
    if s[i] == "[":
        lst = []
        i += 1
        while True:
            while s[i] in " ,":
                i += 1
            if s[i] == "]":
                return lst, i + 1
            v, i = _flow(s, i)
            lst.append(v)
    if s[i] == '"':
        j = i + 1
        while s[j] != '"':
            j += 2 if s[j] == "\\" else 1
        return _scalar(s[i:j + 1]), j + 1
    j = i
    while j < len(s) and s[j] not in ",}]":
        j += 1
    return _scalar(s[i:j]), j


def _value(text):
    text = text.strip()
    if text[:1] in "{[":
        v, i = _flow(text, 0)
        if text[i:].strip():
            raise ValueError("trailing text after flow value: %r" % text)
        return v
    return _scalar(text)


def load(path):
    lines = []
    with open(path, encoding="utf-8") as fh:
        for raw in fh:
            line = _strip_comment(raw.rstrip("\n"))
            if line.strip():
                lines.append((len(line) - len(line.lstrip(" ")), line.strip()))
    pos = [0]

    def block(indent):
        if pos[0] >= len(lines):
            return None
        ind, text = lines[pos[0]]
        if text.startswith("- ") or text == "-":
            lst = []
            while pos[0] < len(lines) and lines[pos[0]][0] == indent and \
                    lines[pos[0]][1].startswith("-"):
                ind, text = lines[pos[0]]
                rest = text[1:].strip()
                if not rest:
                    pos[0] += 1
                    lst.append(block(lines[pos[0]][0]))
                elif re.match(r'^([A-Za-z_][\w.\-]*|"[^"]*"):(\s|$)', rest):
                    # a mapping starting on the dash line: re-read as indent+2
                    lines[pos[0]] = (indent + 2, rest)
                    lst.append(block(indent + 2))
                else:
                    pos[0] += 1
                    lst.append(_value(rest))
            return lst
        d = {}
        while pos[0] < len(lines) and lines[pos[0]][0] == indent and \
                not lines[pos[0]][1].startswith("- "):
            ind, text = lines[pos[0]]
            m = re.match(r'^([A-Za-z_][\w.\-]*|"[^"]*"):(.*)$', text)
            if not m:
                raise ValueError("line %r: expected key: value" % text)
            key, rest = m.group(1).strip('"'), m.group(2).strip()
            pos[0] += 1
            if rest:
                d[key] = _value(rest)
            elif pos[0] < len(lines) and lines[pos[0]][0] > indent:
                d[key] = block(lines[pos[0]][0])
            elif pos[0] < len(lines) and lines[pos[0]][0] == indent and \
                    lines[pos[0]][1].startswith("- "):
                d[key] = block(indent)
            else:
                d[key] = None
        return d

    doc = block(0)
    if pos[0] != len(lines):
        raise ValueError("unparsed line: %r" % (lines[pos[0]][1],))
    return doc


# --------------------------------------------------------------------------
def main(argv):
    path = argv[1] if len(argv) > 1 else os.path.join(ROOT, "experiments", "lee2024", "manifest.yaml")
    man = load(path)
    rows = man["rows"]
    cells = cell_table(rows)
    contradicted = 0
    for f in man.get("findings") or []:
        checks = f.get("checks") or []
        results = []
        for n, c in enumerate(checks, 1):
            ok, detail = evaluate(c, cells)
            results.append(ok)
            print("  %-12s %s #%d: %s" % ("supported" if ok else "contradicted", f["id"], n, detail))
            contradicted += 0 if ok else 1
        if not checks:
            verdict = "not checked (%s)" % (f.get("note") or "no checks")
        else:
            verdict = "supported" if all(results) else "contradicted"
        print("%s: %s" % (f["id"], verdict))

    # Information for finding 4 (not a check): mean turn-1 / turn-2 change to FP16
    d = {"mt_bench_turn1": [], "mt_bench_turn2": []}
    for (model, recipe), cs in sorted(cells.items()):
        base = cells.get((model, "fp16"), {})
        if recipe == "fp16":
            continue
        for col in d:
            if col in cs and col in base:
                d[col].append(cs[col] - base[col])
    if d["mt_bench_turn1"]:
        print("info: MT-Bench mean change to FP16 over %d quantized rows: turn 1 %+.3f, turn 2 %+.3f"
              % (len(d["mt_bench_turn1"]),
                 sum(d["mt_bench_turn1"]) / len(d["mt_bench_turn1"]),
                 sum(d["mt_bench_turn2"]) / len(d["mt_bench_turn2"])))
    return 1 if contradicted else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
