"""Run summaries: per-system means with bootstrap CIs, paired tests, markdown + JSON + PNGs.

``summary.json`` is the machine-readable result; ``summary.md`` the table for humans; the
plots are drawn by :mod:`branchwise.evals.plots`. Every mean carries a 95% percentile
bootstrap interval and every system is compared with a reference system on the same
questions (paired bootstrap and Wilcoxon signed-rank, see :mod:`branchwise.evals.stats`).
"""

from __future__ import annotations

import json
import math
import shutil
from collections import defaultdict
from pathlib import Path
from typing import Any

from branchwise.errors import InputError
from branchwise.evals.plots import write_plots
from branchwise.evals.scoring import PRIMARY_METRIC
from branchwise.evals.stats import bootstrap_ci, paired_bootstrap
from branchwise.files import atomic_write_json, atomic_write_text

#: table columns in display order (a metric no system has is omitted)
COLUMNS = [
    ("f1", "F1"), ("em", "EM"), ("lenient_acc", "LAcc"), ("accuracy", "Acc"), ("not_found", "NF"),
    ("supported", "Supp"), ("ndcg@10", "nDCG@10"), ("recall@5", "R@5"),
    ("recall@10", "R@10"), ("mrr@10", "MRR@10"), ("evidence_recall", "EvR"),
    ("citation_precision", "CitP"), ("citation_recall", "CitR"), ("context_tokens", "ctx tok"),
    ("compression_ratio", "compr"), ("llm_calls", "LLM calls"), ("prompt_tokens", "prompt tok"),
    ("latency_s", "latency s"),
]
_COUNTS = {"context_tokens", "llm_calls", "prompt_tokens"}


def summarize(
    records: list[dict[str, Any]], meta: dict[str, Any], *, reference: str, seed: int = 0, n_resamples: int = 10_000
) -> dict[str, Any]:
    """Means with CIs per system and metric, and paired tests against ``reference``."""
    by_system: dict[str, dict[str, dict[str, float]]] = defaultdict(dict)
    for r in records:
        by_system[r["system"]][r["qid"]] = r["metrics"]
    order = [s for s in meta.get("systems", []) if s in by_system] + sorted(set(by_system) - set(meta.get("systems", [])))
    systems: dict[str, Any] = {}
    for name in order:
        per_q = by_system[name]
        metrics: dict[str, Any] = {}
        for key in sorted({m for v in per_q.values() for m in v}):
            values = [v[key] for v in per_q.values() if key in v and v[key] is not None]
            if values:
                ci = bootstrap_ci(values, seed=seed, n_resamples=n_resamples)
                metrics[key] = {"mean": ci.mean, "low": ci.low, "high": ci.high, "n": ci.n}
        systems[name] = {"n": len(per_q), "metrics": metrics}
    primary = PRIMARY_METRIC.get(meta.get("kind", "qa"), "f1")
    paired: dict[str, Any] = {}
    ref = by_system.get(reference, {})
    for name in order:
        if name == reference:
            continue
        tests = {}
        for metric in dict.fromkeys([primary, "ndcg@10"]):
            common = [q for q in by_system[name] if q in ref and metric in by_system[name][q] and metric in ref[q]]
            if len(common) < 2:
                continue
            t = paired_bootstrap([by_system[name][q][metric] for q in common], [ref[q][metric] for q in common],
                                 seed=seed, n_resamples=n_resamples)
            tests[metric] = {"diff": t.diff, "low": t.low, "high": t.high, "p_bootstrap": t.p_bootstrap,
                             "p_wilcoxon": t.p_wilcoxon, "n": t.n}
        if tests:
            paired[name] = tests
    by_type: dict[str, dict[str, dict[str, float]]] = defaultdict(dict)
    types = sorted({r.get("type") or "" for r in records} - {""})
    if len(types) > 1:  # e.g. HotpotQA bridge / comparison
        for name in order:
            for t in types:
                vals = [r["metrics"][primary] for r in records
                        if r["system"] == name and r.get("type") == t and r["metrics"].get(primary) is not None]
                if vals:
                    by_type[name][t] = {"mean": math.fsum(vals) / len(vals), "n": len(vals)}
    return {"dataset": meta.get("dataset"), "kind": meta.get("kind"), "primary": primary, "reference": reference,
            "meta": meta, "systems": systems, "paired": paired, "by_type": dict(by_type)}


def _fmt(key: str, m: dict[str, float] | None, with_ci: bool) -> str:
    if m is None or math.isnan(m["mean"]):
        return "–"
    if key in _COUNTS:
        return f"{m['mean']:.0f}" if not with_ci else f"{m['mean']:.0f} [{m['low']:.0f}, {m['high']:.0f}]"
    if key == "latency_s":
        return f"{m['mean']:.3g}"
    digits = 3
    if not with_ci:
        return f"{m['mean']:.{digits}f}"
    return f"{m['mean']:.{digits}f} [{m['low']:.{digits}f}, {m['high']:.{digits}f}]"


def to_markdown(summary: dict[str, Any]) -> str:
    """The summary as markdown: the main table, then the paired tests."""
    systems = summary["systems"]
    primary = summary["primary"]
    # a column is shown when some system has it, and cost columns only when not all zero
    present = [(k, label) for k, label in COLUMNS
               if any(k in s["metrics"] and (k not in _COUNTS or s["metrics"][k]["mean"] > 0) for s in systems.values())]
    headline = ", ".join(dict.fromkeys([primary, "ndcg@10"]))
    meta = summary["meta"]
    lines = [
        f"## {summary['dataset']}: {meta.get('questions')} questions, {meta.get('documents')} documents "
        f"({meta.get('chunks')} chunks)",
        "",
        *([f"**Partial run:** the {meta['questions_answered_by_all']} questions every system answered so far "
           f"(`--report-only`), of {meta.get('questions')}.", ""] if meta.get("report_only") else []),
        f"Means over questions, with 95% bootstrap CIs for the headline metrics ({headline}). "
        "Retrieval metrics are document-level.",
        "",
        "| system | n | " + " | ".join(label for _, label in present) + " |",
        "|---|---:|" + "---:|" * len(present),
    ]
    for name, s in systems.items():
        cells = [_fmt(k, s["metrics"].get(k), with_ci=k in (primary, "ndcg@10")) for k, _ in present]
        lines.append(f"| {name} | {s['n']} | " + " | ".join(cells) + " |")
    by_type = summary.get("by_type") or {}
    if by_type:
        types = sorted({t for v in by_type.values() for t in v})
        lines += ["", f"{primary} per question type:", "", "| system | " + " | ".join(types) + " |",
                  "|---|" + "---:|" * len(types)]
        for name, per in by_type.items():
            lines.append(f"| {name} | " + " | ".join(
                f"{per[t]['mean']:.3f} (n={per[t]['n']})" if t in per else "–" for t in types) + " |")
    if summary["paired"]:
        lines += ["", f"Paired tests against **{summary['reference']}** on the same questions "
                  "(difference of means, 95% bootstrap CI, paired-bootstrap and Wilcoxon p-values):", "",
                  "| system | metric | Δ | 95% CI | p (bootstrap) | p (Wilcoxon) | n |", "|---|---|---:|---|---:|---:|---:|"]
        for name, tests in summary["paired"].items():
            for metric, t in tests.items():
                lines.append(f"| {name} | {metric} | {t['diff']:+.3f} | [{t['low']:+.3f}, {t['high']:+.3f}] | "
                             f"{t['p_bootstrap']:.3g} | {t['p_wilcoxon']:.3g} | {t['n']} |")
    return "\n".join(lines) + "\n"


def write_report(
    out_dir: Path, records: list[dict[str, Any]], meta: dict[str, Any], *, reference: str, seed: int = 0,
    n_resamples: int = 10_000,
) -> dict[str, Any]:
    """Write ``summary.json``, ``summary.md`` and the PNG plots into ``out_dir``."""
    summary = summarize(records, meta, reference=reference, seed=seed, n_resamples=n_resamples)
    summary["plots"] = write_plots(Path(out_dir), summary)
    atomic_write_json(Path(out_dir) / "summary.json", summary)
    md = to_markdown(summary) + "".join(f"\n![{p}]({p})\n" for p in summary["plots"])
    atomic_write_text(Path(out_dir) / "summary.md", md)
    return summary


def collect_reports(run_dirs: list[Path], out_dir: Path, *, title: str = "Evaluation report", preface: str = "") -> Path:
    """Gather finished runs into one small, committable report: ``README.md`` + ``img/*.png``.

    Each run contributes its summary table (re-rendered from ``summary.json``), its UDCG
    study if present, its plots (copied as ``img/<run folder>_<plot>.png``) and its run time
    metadata. Nothing else (results, indexes, caches) is copied.
    """
    out_dir = Path(out_dir)
    (out_dir / "img").mkdir(parents=True, exist_ok=True)
    parts = [f"# {title}", "", preface.strip(), ""] if preface.strip() else [f"# {title}", ""]
    for run in map(Path, run_dirs):
        summary_path = run / "summary.json"
        if not summary_path.exists():
            raise InputError(f"{run} has no summary.json.", fix="pass the --out folder of a finished `branchwise eval` run.")
        summary = json.loads(summary_path.read_text())
        parts.append(to_markdown(summary))
        study = run / "udcg_study.md"
        if study.exists():
            parts.append(study.read_text())
        for plot in summary.get("plots", []):
            name = f"{run.name}_{plot}"
            shutil.copyfile(run / plot, out_dir / "img" / name)
            parts.append(f"![{summary['dataset']} {plot}](img/{name})\n")
    text = "\n".join(parts)
    atomic_write_text(out_dir / "README.md", text)
    return out_dir / "README.md"
