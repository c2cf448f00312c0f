#!/usr/bin/env python3
"""Write experiments/lee2024/manifest.yaml from the published tables.

Usage (from the repository root):

    python3 scripts/lee2024/make_manifest.py [PAPER_TABLES.md [manifest.yaml]]

Defaults: ../shared/docs/PAPER_TABLES.md and experiments/lee2024/manifest.yaml,
both relative to the repository root (this script's ../..). Reads the ```csv
blocks of Tables 2, 3 and 4 (Table 5, pretrained models, is not part of the
reproduction target) and writes the reproduction manifest that
`qsweep reproduce` compares the sweep's `tables` node with. Python 3 standard
library only; the output is deterministic (same input, same bytes).

The findings' checks are evaluated on the published values before writing:
a check that does not hold on the paper's own numbers is an error here
(scripts/lee2024/check_findings.py evaluates them on the written file).
"""

import csv
import io
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
DEFAULT_TABLES = os.path.join(ROOT, "..", "shared", "docs", "PAPER_TABLES.md")
DEFAULT_OUT = os.path.join(ROOT, "experiments", "lee2024", "manifest.yaml")

# Paper model name -> (models collection key of experiments/lee2024/models.yaml, HF id)
MODELS = {
    "Vicuna-7B-v1.3": ("vicuna-7b-v1.3", "lmsys/vicuna-7b-v1.3"),
    "Gemma-2B-it": ("gemma-2b-it", "google/gemma-2b-it"),
    "Gemma-7B-it": ("gemma-7b-it", "google/gemma-7b-it"),
    "Llama-2-7B-Chat": ("llama-2-7b-chat", "meta-llama/Llama-2-7b-chat-hf"),
    "Llama-2-13B-Chat": ("llama-2-13b-chat", "meta-llama/Llama-2-13b-chat-hf"),
    "Llama-2-70B-Chat": ("llama-2-70b-chat", "meta-llama/Llama-2-70b-chat-hf"),
    "Llama-3.1-8B-Instruct": ("llama-3.1-8b-instruct", "meta-llama/Llama-3.1-8B-Instruct"),
    "Llama-3.1-70B-Instruct": ("llama-3.1-70b-instruct", "meta-llama/Llama-3.1-70B-Instruct"),
    "Llama-3.1-405B-Instruct": ("llama-3.1-405b-instruct", "meta-llama/Llama-3.1-405B-Instruct"),
}

# (method, tool, w_bits, a_bits) of Tables 2/3 -> recipes collection key of
# experiments/lee2024/recipes.yaml ("fp16" = the unquantized baseline).
RECIPES = {
    ("FP16", "", "16", "16"): "fp16",
    ("GPTQ", "AutoGPTQ", "4", "16"): "gptq-w4g128-autogptq",
    ("AWQ", "AutoAWQ", "4", "16"): "awq-w4g128",
    ("GPTQ", "llmcompressor", "4", "16"): "gptq-w4g128-llmc",
    ("GPTQ", "llmcompressor", "8", "16"): "gptq-w8-llmc",
    ("SmoothQuant", "llmcompressor", "8", "8"): "sq-gptq-w8a8",
    ("FP8", "llmcompressor", "8", "8"): "fp8",
}

# Table 4 column -> (method, tool, w_bits, a_bits)
TABLE4_METHODS = {
    "FP16": ("FP16", "", "16", "16"),
    "GPTQ_AutoGPTQ_w4a16": ("GPTQ", "AutoGPTQ", "4", "16"),
    "AWQ_w4a16": ("AWQ", "AutoAWQ", "4", "16"),
}

# CSV header -> column id (= the task name of the sweep's `task` axis for
# lm-eval columns), task, metric key of summary.json, label.
COLUMNS_T2 = [
    ("arc_challenge_25shot_acc_norm", "arc_challenge", "arc_challenge", "acc_norm,none", "ARC-C (25-shot)"),
    ("gsm8k_5shot_strict_match", "gsm8k", "gsm8k", "exact_match,strict-match", "GSM8K (5-shot)"),
    ("hellaswag_10shot_acc_norm", "hellaswag", "hellaswag", "acc_norm,none", "HellaSwag (10-shot)"),
    ("mmlu_5shot_acc", "mmlu", "mmlu", "acc,none", "MMLU (5-shot)"),
    ("truthfulqa_mc2_0shot", "truthfulqa_mc2", "truthfulqa_mc2", "acc,none", "TruthfulQA-MC2 (0-shot)"),
    ("winogrande_5shot_acc", "winogrande", "winogrande", "acc,none", "WinoGrande (5-shot)"),
]
COLUMNS_T3 = [
    ("bbh_3shot", "leaderboard_bbh", "leaderboard_bbh", "acc_norm,none", "BBH (3-shot)"),
    ("gpqa_0shot", "leaderboard_gpqa", "leaderboard_gpqa", "acc_norm,none", "GPQA (0-shot)"),
    ("ifeval_0shot", "leaderboard_ifeval", "leaderboard_ifeval", "prompt_level_strict_acc,none", "IFEval (0-shot)"),
    ("math_lvl5_4shot", "leaderboard_math_hard", "leaderboard_math_hard", "exact_match,none", "MATH Lvl 5 (4-shot)"),
    ("mmlu_pro_5shot", "leaderboard_mmlu_pro", "leaderboard_mmlu_pro", "acc,none", "MMLU-Pro (5-shot)"),
    ("musr_0shot", "leaderboard_musr", "leaderboard_musr", "acc_norm,none", "MuSR (0-shot)"),
]
COLUMNS_T4 = [
    ("1", "mt_bench_turn1", "mt_bench", "turn1", "MT-Bench turn 1"),
    ("2", "mt_bench_turn2", "mt_bench", "turn2", "MT-Bench turn 2"),
    ("avg", "mt_bench_avg", "mt_bench", "avg", "MT-Bench average"),
]

V1 = [c[1] for c in COLUMNS_T2]
V2 = [c[1] for c in COLUMNS_T3]
MT = [c[1] for c in COLUMNS_T4]
EXCEPT_1 = ["truthfulqa_mc2", "leaderboard_ifeval"]
NOT_EXCEPT = [c for c in V1 + V2 if c not in EXCEPT_1]


def sel(model, recipe):
    return {"model": model, "recipe": recipe}


# The paper's findings (PAPER_TABLES.md "Findings"). Check kinds:
#   beats:        row a beats row b (a > b) on more than min_fraction of the
#                 columns (default: every column both rows have)
#   mean_greater: mean over the cells of the a rows > mean over the b rows +
#                 margin; `on: value` (the cells) or `on: diff_to_baseline`
#                 (cell - the same model's fp16 cell of that column); a
#                 selector value may be a glob ("*", "awq-*")
FINDINGS = [
    {
        "id": "larger-quantized-beats-smaller-fp16",
        "text": "A larger model quantized to about the size of a smaller FP16 model beats it on "
                "most tasks, except hallucination (TruthfulQA) and instruction following (IFEval)",
        "checks": [
            # 4-bit weights of a model about twice the size: storage at most the FP16 one's
            {"kind": "beats", "a": sel("gemma-7b-it", "gptq-w4g128-autogptq"),
             "b": sel("gemma-2b-it", "fp16"), "columns": NOT_EXCEPT, "min_fraction": 0.5},
            {"kind": "beats", "a": sel("gemma-7b-it", "awq-w4g128"),
             "b": sel("gemma-2b-it", "fp16"), "columns": NOT_EXCEPT, "min_fraction": 0.5},
            {"kind": "beats", "a": sel("llama-2-13b-chat", "gptq-w4g128-autogptq"),
             "b": sel("llama-2-7b-chat", "fp16"), "columns": NOT_EXCEPT, "min_fraction": 0.5},
            {"kind": "beats", "a": sel("llama-2-13b-chat", "awq-w4g128"),
             "b": sel("llama-2-7b-chat", "fp16"), "columns": NOT_EXCEPT, "min_fraction": 0.5},
            {"kind": "beats", "a": sel("llama-2-70b-chat", "gptq-w4g128-autogptq"),
             "b": sel("llama-2-13b-chat", "fp16"), "columns": NOT_EXCEPT, "min_fraction": 0.5},
            {"kind": "beats", "a": sel("llama-2-70b-chat", "awq-w4g128"),
             "b": sel("llama-2-13b-chat", "fp16"), "columns": NOT_EXCEPT, "min_fraction": 0.5},
            {"kind": "beats", "a": sel("llama-3.1-70b-instruct", "gptq-w4g128-autogptq"),
             "b": sel("llama-3.1-8b-instruct", "fp16"), "columns": NOT_EXCEPT, "min_fraction": 0.5},
            {"kind": "beats", "a": sel("llama-3.1-70b-instruct", "gptq-w4g128-llmc"),
             "b": sel("llama-3.1-8b-instruct", "fp16"), "columns": NOT_EXCEPT, "min_fraction": 0.5},
            {"kind": "beats", "a": sel("llama-3.1-70b-instruct", "awq-w4g128"),
             "b": sel("llama-3.1-8b-instruct", "fp16"), "columns": NOT_EXCEPT, "min_fraction": 0.5},
            # the exceptions, where the paper sees them: the FP16 Llama-2-7B-Chat
            # beats the 4-bit Llama-2-13B-Chat on TruthfulQA and IFEval (the larger
            # pairs, 70B vs 13B and Llama 3.1 70B vs 8B, show no such exception)
            {"kind": "beats", "a": sel("llama-2-7b-chat", "fp16"),
             "b": sel("llama-2-13b-chat", "gptq-w4g128-autogptq"), "columns": EXCEPT_1,
             "min_fraction": 0.5},
            {"kind": "beats", "a": sel("llama-2-7b-chat", "fp16"),
             "b": sel("llama-2-13b-chat", "awq-w4g128"), "columns": EXCEPT_1,
             "min_fraction": 0.5},
        ],
    },
    {
        "id": "method-size-bits-matter",
        "text": "Accuracy depends on method, size and bit-width; weight-only methods hold up better "
                "at 405B; AWQ tends to beat GPTQ; SmoothQuant drops sharply on 405B",
        "checks": [
            # AWQ vs AutoGPTQ's GPTQ (both 4-bit g128), over the 8 models having both
            {"kind": "mean_greater",
             "a": [sel("*", "awq-w4g128")], "b": [sel("*", "gptq-w4g128-autogptq")],
             "columns": V1 + V2, "on": "diff_to_baseline", "margin": 0},
            # 405B (no FP16 row): SmoothQuant W8A8 well below FP8 W8A8 ...
            {"kind": "mean_greater",
             "a": [sel("llama-3.1-405b-instruct", "fp8")],
             "b": [sel("llama-3.1-405b-instruct", "sq-gptq-w8a8")],
             "columns": V1 + V2, "on": "value", "margin": 5},
            # ... and below the weight-only 4-bit GPTQ
            {"kind": "mean_greater",
             "a": [sel("llama-3.1-405b-instruct", "gptq-w4g128-llmc")],
             "b": [sel("llama-3.1-405b-instruct", "sq-gptq-w8a8")],
             "columns": V1 + V2, "on": "value", "margin": 5},
        ],
    },
    {
        "id": "difficulty-does-not-predict-loss",
        "text": "Task difficulty does not predict quantization loss",
        "checks": [],
        "note": "a statistical statement (no correlation between a task's FP16 accuracy and "
                "its quantization loss); not a comparison of cells, so not machine-checked",
    },
    {
        "id": "mt-bench-turn2-larger-models",
        "text": "MT-Bench discriminates poorly among strong recent models; quantization loss "
                "shows more in turn 2 and in larger models",
        "checks": [],
        "note": "not machine-checked: a turn-2-vs-turn-1 drop check "
                "compares two different columns per side, which the check kinds do not "
                "express, and over the 16 quantized Table 4 rows the mean turn-2 drop "
                "(-0.16) is not larger than the mean turn-1 drop (-0.20) "
                "(scripts/lee2024/check_findings.py prints both); 'discriminates poorly' is "
                "a qualitative statement",
    },
]


# --------------------------------------------------------------------------
def read_blocks(md_text):
    """Return {table number: csv text} for the ```csv blocks under '## Table N'."""
    blocks = {}
    current = None
    lines = md_text.splitlines()
    i = 0
    while i < len(lines):
        m = re.match(r"^##\s+Table\s+(\d+)\b", lines[i])
        if m:
            current = int(m.group(1))
        elif lines[i].strip() == "```csv" and current is not None:
            j = i + 1
            body = []
            while j < len(lines) and lines[j].strip() != "```":
                body.append(lines[j])
                j += 1
            if current in blocks:
                raise SystemExit("Table %d has more than one csv block" % current)
            blocks[current] = "\n".join(body) + "\n"
            i = j
        i += 1
    for t in (2, 3, 4):
        if t not in blocks:
            raise SystemExit("no ```csv block found under '## Table %d'" % t)
    return blocks


def parse_csv(text):
    rows = list(csv.DictReader(io.StringIO(text)))
    if not rows:
        raise SystemExit("empty csv block")
    return rows


def num(s):
    """The published text of a number, checked to parse (kept verbatim: 4.989 stays 4.989)."""
    s = s.strip()
    if not re.match(r"^-?\d+(\.\d+)?$", s):
        raise SystemExit("not a number: %r" % s)
    return s


def model_of(name):
    if name not in MODELS:
        raise SystemExit("unknown model %r (add it to MODELS)" % name)
    return MODELS[name]


def recipe_of(key):
    if key not in RECIPES:
        raise SystemExit("unknown method/tool/bits %r (add it to RECIPES)" % (key,))
    return RECIPES[key]


def build(blocks):
    rows = []
    storage = {}  # (model key, recipe key) -> storage_gb text, from Table 2
    for tno, cols in ((2, COLUMNS_T2), (3, COLUMNS_T3)):
        data = parse_csv(blocks[tno])
        header = list(data[0].keys())
        for src, _, _, _, _ in cols:
            if src not in header:
                raise SystemExit("Table %d: column %r missing (header: %s)" % (tno, src, header))
        for r in data:
            mkey, hf = model_of(r["model"])
            key = (r["method"], r["tool"], r["w_bits"], r["a_bits"])
            rkey = recipe_of(key)
            values = [(cid, num(r[src])) for src, cid, _, _, _ in cols]
            avg = num(r["avg"])
            mean = sum(float(v) for _, v in values) / len(values)
            if abs(mean - float(avg)) > 0.011:
                raise SystemExit("Table %d %s %s: average %s but cells give %.3f"
                                 % (tno, r["model"], rkey, avg, mean))
            storage.setdefault((mkey, rkey), num(r["storage_gb"]))
            rows.append({
                "table": "Table %d" % tno,
                "row": sel(mkey, rkey),
                "label": [("model", r["model"]), ("model_id", hf), ("method", r["method"]),
                          ("tool", r["tool"]), ("w_bits", num(r["w_bits"])),
                          ("a_bits", num(r["a_bits"])), ("storage_gb", num(r["storage_gb"]))],
                "values": values,
                "average": avg,
            })
    # Table 4: one row per (model, method); turns 1, 2 and avg as three columns
    data = parse_csv(blocks[4])
    t4 = {}
    order = []
    for r in data:
        mkey, hf = model_of(r["model"])
        for col, meth in TABLE4_METHODS.items():
            rkey = recipe_of(meth)
            k = (r["model"], col)
            if k not in t4:
                t4[k] = {"model": r["model"], "mkey": mkey, "hf": hf, "meth": meth, "rkey": rkey,
                         "cost": num(r["api_cost_usd_per_model"]), "turns": {}}
                order.append(k)
            if r["turn"] in t4[k]["turns"]:
                raise SystemExit("Table 4: %s %s turn %s twice" % (r["model"], col, r["turn"]))
            t4[k]["turns"][r["turn"]] = num(r[col])
    for k in order:
        e = t4[k]
        meth = e["meth"]
        label = [("model", e["model"]), ("model_id", e["hf"]), ("method", meth[0]),
                 ("tool", meth[1]), ("w_bits", meth[2]), ("a_bits", meth[3])]
        if (e["mkey"], e["rkey"]) in storage:
            label.append(("storage_gb", storage[(e["mkey"], e["rkey"])]))
        label.append(("judge_cost_usd", e["cost"]))
        values = []
        for turn, cid, _, _, _ in COLUMNS_T4:
            if turn not in e["turns"]:
                raise SystemExit("Table 4: %s %s has no turn %s" % (e["model"], k[1], turn))
            values.append((cid, e["turns"][turn]))
        rows.append({"table": "Table 4", "row": sel(e["mkey"], e["rkey"]), "label": label,
                     "values": values, "average": None})
    return rows


# --------------------------------------------------------------------------
# Check evaluation (shared with check_findings.py, which imports this module)
def cell_table(rows):
    """{(model, recipe): {column: float}} over every manifest row (all tables)."""
    cells = {}
    for r in rows:
        key = (r["row"]["model"], r["row"]["recipe"])
        d = cells.setdefault(key, {})
        values = r["values"]
        items = values.items() if isinstance(values, dict) else values
        for c, v in items:
            d[c] = float(v)
    return cells


def _match(selector, key):
    import fnmatch
    return (fnmatch.fnmatchcase(key[0], str(selector["model"]))
            and fnmatch.fnmatchcase(key[1], str(selector["recipe"])))


def evaluate(check, cells, baseline="fp16"):
    """Return (holds: bool, detail: str)."""
    kind = check["kind"]
    if kind == "beats":
        a = [k for k in cells if _match(check["a"], k)]
        b = [k for k in cells if _match(check["b"], k)]
        if len(a) != 1 or len(b) != 1:
            return False, "beats needs one row per side (a: %d, b: %d)" % (len(a), len(b))
        ca, cb = cells[a[0]], cells[b[0]]
        cols = check.get("columns") or sorted(set(ca) & set(cb))
        cols = [c for c in cols if c in ca and c in cb]
        if not cols:
            return False, "no common column"
        won = [c for c in cols if ca[c] > cb[c]]
        lost = [c for c in cols if c not in won]
        frac = len(won) / len(cols)
        mf = float(check.get("min_fraction", 0.5))
        return frac > mf, "%s beats %s on %d/%d columns (%.2f > %.2f?)%s" % (
            "%s/%s" % a[0], "%s/%s" % b[0], len(won), len(cols), frac, mf,
            "; not on " + ", ".join(lost) if lost else "")
    if kind == "mean_greater":
        on = check.get("on", "value")
        cols = check.get("columns")

        def side(sels):
            vals = []
            for k in sorted(cells):
                if not any(_match(s, k) for s in sels):
                    continue
                base = cells.get((k[0], baseline), {})
                for c in (cols or sorted(cells[k])):
                    if c not in cells[k]:
                        continue
                    if on == "diff_to_baseline":
                        if c not in base:
                            continue
                        vals.append(cells[k][c] - base[c])
                    else:
                        vals.append(cells[k][c])
            return vals

        va, vb = side(check["a"]), side(check["b"])
        if not va or not vb:
            return False, "no cells (a: %d, b: %d)" % (len(va), len(vb))
        ma, mb = sum(va) / len(va), sum(vb) / len(vb)
        margin = float(check.get("margin", 0))
        return ma > mb + margin, "mean a %.3f (%d cells) vs mean b %.3f (%d cells) + margin %g [%s]" % (
            ma, len(va), mb, len(vb), margin, on)
    return False, "unknown check kind %r" % kind


# --------------------------------------------------------------------------
def q(s):
    """A double-quoted YAML scalar."""
    return '"' + str(s).replace("\\", "\\\\").replace('"', '\\"') + '"'


def plain(s):
    """A plain YAML scalar when safe, else quoted."""
    s = str(s)
    if re.match(r"^[A-Za-z][A-Za-z0-9_.\-]*$", s) and s.lower() not in (
            "true", "false", "null", "yes", "no", "on", "off", "y", "n", "~"):
        return s
    return q(s)


def flow_map(pairs):
    return "{" + ", ".join("%s: %s" % (k, v) for k, v in pairs) + "}"


def sel_text(s):
    return flow_map([("model", plain(s["model"])), ("recipe", plain(s["recipe"]))])


def emit(rows, src_rel, out_rel):
    o = []
    w = o.append
    w("# GENERATED by scripts/lee2024/make_manifest.py from %s -- do not edit by hand." % src_rel)
    w("# Regenerate (from the repository root):")
    w("#   python3 scripts/lee2024/make_manifest.py %s %s" % (src_rel, out_rel))
    w("# Check the findings on the published values:")
    w("#   python3 scripts/lee2024/check_findings.py %s" % out_rel)
    w("#")
    w("# The reproduction target of Lee et al. 2024 (arXiv 2409.11055): Tables 2")
    w("# (Open LLM Leaderboard v1 tasks), 3 (v2 tasks) and 4 (MT-Bench), one row per")
    w("# (table, model, method). `row` names the measured row of the sweep's table")
    w("# (models / recipes collection keys of experiments/lee2024/; recipe fp16 = the")
    w("# unquantized baseline, score_fp16[...] nodes); `label` is the paper's own")
    w("# description; `values` are the published cells, verbatim.")
    w("version: 1")
    w("name: lee2024")
    w('title: "Lee et al. 2024, Tables 2-4 (quantized instruction-tuned LLMs up to 405B)"')
    w('source: "arXiv 2409.11055"')
    w("experiment: sweep.yaml          # relative to this manifest: the experiment that produces the measured table")
    w("table: tables                   # id of the tabulate node in that experiment whose table.json is compared")
    w("group: model                    # the row key pairing a row with its baseline row")
    w("baseline: {recipe: fp16}        # the baseline rows (differences, findings on diff_to_baseline)")
    w("# default policy: match if |measured - published| <= abs; within noise if")
    w("# <= k_stderr * measured stderr; else drift")
    w("tolerance: {abs: 1.0, k_stderr: 2}")
    w("")
    w("# column id -> what it measures; ids are used in rows[].values. task = the")
    w("# sweep's `task` axis value (tasks collection key, experiments/lee2024/tasks.yaml);")
    w("# metric = the `metric,filter` key of the score node's summary.json; scale:")
    w("# published = measured * scale.")
    w("columns:")
    w("  # Table 2: Open LLM Leaderboard v1 tasks, lm-eval accuracies x 100")
    for _, cid, task, metric, label in COLUMNS_T2:
        w("  %s: %s" % (cid, flow_map([("task", task), ("metric", q(metric)), ("convention", "raw"),
                                       ("scale", "100"), ("label", q(label))])))
    w("  # Table 3: Open LLM Leaderboard v2 tasks. The paper does not say whether its")
    w("  # numbers are raw lm-eval accuracies x 100 or the leaderboard's")
    w("  # baseline-normalized scores; GPQA (24-44) and MuSR (35-49) sit near raw")
    w("  # accuracies (normalized GPQA/MuSR would be near 0-20), so PAPER_TABLES.md")
    w("  # says to treat them as raw: `convention: raw` compares the raw metric x 100.")
    w("  # `convention: normalized` would compare against the OLL v2 normalized score")
    w("  # that the score nodes also report (tasks.yaml `normalize: oll_v2`).")
    w("  # IFEval: prompt_level_strict_acc, the number the Open LLM Leaderboard v2")
    w("  # reports (experiments/benchmarks/leaderboard_v2.yaml).")
    for _, cid, task, metric, label in COLUMNS_T3:
        w("  %s: %s" % (cid, flow_map([("task", task), ("metric", q(metric)), ("convention", "raw"),
                                       ("scale", "100"), ("label", q(label))])))
    w("  # Table 4: MT-Bench, GPT-4 single-answer grading, scores 1-10. The sweep")
    w("  # generates the answers (mt_bench_fp16 / mt_bench nodes) and the judge_fp16 /")
    w("  # judge nodes grade them (summary metrics turn1 / turn2 / avg of task mt_bench).")
    for _, cid, task, metric, label in COLUMNS_T4:
        w("  %s: %s" % (cid, flow_map([("task", task), ("metric", q(metric)), ("convention", "raw"),
                                       ("scale", "1"), ("label", q(label)),
                                       ("tolerance", "{abs: 0.25}")])))
    w("")
    w("rows:")
    last = None
    for r in rows:
        if r["table"] != last:
            w("  # ---- %s ----" % r["table"])
            last = r["table"]
        w("  - table: %s" % q(r["table"]))
        w("    row: %s" % sel_text(r["row"]))
        lab = []
        for k, v in r["label"]:
            if k in ("model", "model_id", "method", "tool"):
                lab.append((k, q(v)))
            else:
                lab.append((k, v))
        w("    label: %s" % flow_map(lab))
        w("    values: %s" % flow_map(r["values"]))
        if r["average"] is not None:
            w("    average: %s" % r["average"])
    w("")
    w("# The paper's findings. Check kinds:")
    w("#   beats         row a beats row b (a > b) on more than min_fraction of the listed")
    w("#                 columns (default: every column both rows have)")
    w("#   mean_greater  mean of the a cells > mean of the b cells + margin, on: value |")
    w("#                 diff_to_baseline (cell minus the same model's fp16 cell); a, b:")
    w("#                 lists of row selectors, a selector value may be a glob")
    w("# Every check holds on the published values (scripts/lee2024/check_findings.py).")
    w("findings:")
    for f in FINDINGS:
        w("  - id: %s" % f["id"])
        w("    text: %s" % q(f["text"]))
        if not f["checks"]:
            w("    checks: []")
        else:
            w("    checks:")
        for c in f["checks"]:
            w("      - kind: %s" % c["kind"])
            for side in ("a", "b"):
                v = c[side]
                if isinstance(v, list):
                    w("        %s: [%s]" % (side, ", ".join(sel_text(s) for s in v)))
                else:
                    w("        %s: %s" % (side, sel_text(v)))
            if "columns" in c:
                w("        columns: [%s]" % ", ".join(c["columns"]))
            if "min_fraction" in c:
                w("        min_fraction: %s" % c["min_fraction"])
            if "on" in c:
                # quoted: a YAML 1.1 reader (PyYAML) would take a plain `on` key as true
                w('        "on": %s' % c["on"])
            if "margin" in c:
                w("        margin: %s" % c["margin"])
        if "note" in f:
            w("    note: %s" % q(f["note"]))
    return "\n".join(o) + "\n"


def main(argv):
    src = argv[1] if len(argv) > 1 else DEFAULT_TABLES
    out = argv[2] if len(argv) > 2 else DEFAULT_OUT
    with open(src, encoding="utf-8") as fh:
        blocks = read_blocks(fh.read())
    rows = build(blocks)
    cells = cell_table(rows)
    bad = 0
    for f in FINDINGS:
        for c in f["checks"]:
            ok, detail = evaluate(c, cells)
            if not ok:
                bad += 1
                print("check of %s does not hold on the published values: %s" % (f["id"], detail),
                      file=sys.stderr)
    if bad:
        return 1

    def rel(p):
        # paths in the header comment: relative to the repository root, stable
        # across checkouts
        r = os.path.relpath(os.path.abspath(p), ROOT)
        return r.replace(os.sep, "/")

    text = emit(rows, rel(src), rel(out))
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, "w", encoding="utf-8", newline="\n") as fh:
        fh.write(text)
    n = {}
    for r in rows:
        n[r["table"]] = n.get(r["table"], 0) + 1
    print("wrote %s: %s rows, %d findings" % (
        out, ", ".join("%s %d" % kv for kv in sorted(n.items())), len(FINDINGS)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
