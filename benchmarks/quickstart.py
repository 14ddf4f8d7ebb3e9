"""Benchmark: the README's Python quickstart, run verbatim, on five small files.

    .venv/bin/python benchmarks/quickstart.py [--out reports/quickstart.json]

Takes the first ```python block under "## Quickstart (Python)" in README.md, writes five small
Markdown files (the opening ~120 words of five pages of the bundled user guide, ~600 words in
all) to ``my_docs/`` in a fresh temporary folder, and runs the block there in a new Python
process with the embedded default models, timing the whole run (model loading included; the
assembled GGUF in the user cache is reused, as on any second run). The result is printed and
written as JSON; README.md quotes it next to the command.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WORDS_PER_FILE = 120


def quickstart_code(readme: Path = REPO / "README.md") -> str:
    text = readme.read_text(encoding="utf-8")
    section = text.split("## Quickstart (Python)", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    if match is None:
        raise SystemExit("no ```python block under '## Quickstart (Python)' in README.md")
    return match.group(1)


def write_docs(folder: Path) -> int:
    folder.mkdir(parents=True)
    pages = sorted((REPO / "branchwise" / "demo_corpus").glob("*.md"))[:5]
    total = 0
    for page in pages:
        words = page.read_text(encoding="utf-8").split()[:WORDS_PER_FILE]
        (folder / page.name).write_text(" ".join(words) + "\n", encoding="utf-8")
        total += len(words)
    return total


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=REPO / "reports" / "quickstart.json")
    args = p.parse_args()
    code = quickstart_code()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        words = write_docs(work / "my_docs")
        (work / "quickstart.py").write_text(code, encoding="utf-8")
        t0 = time.perf_counter()
        done = subprocess.run([sys.executable, "quickstart.py"], cwd=work, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        trace = json.loads((work / "trace.json").read_text()) if (work / "trace.json").exists() else {}
    if done.returncode != 0:
        raise SystemExit(f"the quickstart failed ({done.returncode}):\n{done.stderr[-3000:]}")
    result = {
        "command": "python benchmarks/quickstart.py",
        "files": 5, "words": words, "wall_s": round(wall, 1), "under_3_min": wall < 180,
        "llm_calls": trace.get("usage", {}).get("llm_calls"),
        "answer": (trace.get("answer") or {}).get("text", ""),
        "stdout": done.stdout[-2000:],
        "machine": f"{platform.machine()}, {__import__('os').cpu_count()} CPUs",
        "date": time.strftime("%Y-%m-%d"),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps({k: v for k, v in result.items() if k != "stdout"}, indent=2))
    print(done.stdout)


if __name__ == "__main__":
    main()
