"""Run every benchmark and rewrite ``reports/benchmarks.md``.

    python -m benchmarks            # all
    python -m benchmarks hand synth # some

Each ``benchmarks/bench_<name>.py`` exposes ``run() -> dict`` of measured figures and optionally
``notes(figures) -> str`` (Markdown under its table: targets met or not, what limits them). Ratios are
measured within one run on one machine, so they compare like with like; each section records the machine
it ran on, its date and code version, and the machine's 1-minute load average when it started (above the
core count: other work shared the CPUs, so absolute speeds are low, ratios less so). A partial run replaces
only its sections, so sections from different machines can stand side by side: compare absolute figures
only within a section.
"""

from __future__ import annotations

import datetime as dt
import importlib
import os
import platform
import sys
import time
from pathlib import Path

import torch

from handflow.io import write_text
from handflow.provenance import code_version

NAMES = ["matmul", "hand", "synth", "model", "metrics", "encoder", "train", "store", "rank", "triangulation", "samples", "scale", "multihands", "index"]
REPORT = Path(__file__).resolve().parent.parent / "reports" / "benchmarks.md"


def matmul_gflops(n: int = 2048, repeats: int = 10) -> float:
    """The machine's float32 matmul rate, the yardstick for achieved-vs-possible ratios."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    t0 = time.perf_counter()
    for _ in range(repeats):
        a @ b
    dt_s = (time.perf_counter() - t0) / repeats
    return 2 * n**3 / dt_s / 1e9


def machine() -> str:
    """CPU model and core count, e.g. 'Intel(R) Xeon(R) ... (x86_64), 2 CPUs'."""
    name = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = f"{line.split(':', 1)[1].strip()} ({platform.machine()})"
                break
    except OSError:
        pass
    return f"{name}, {os.cpu_count()} CPUs"


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _previous_sections() -> dict[str, str]:
    """Sections of the existing report, so a partial run replaces only what it measured."""
    if not REPORT.is_file():
        return {}
    parts = REPORT.read_text().split("\n## ")[1:]
    return {p.split("\n", 1)[0].strip(): "## " + p.rstrip() + "\n" for p in parts}


def main(argv: list[str]) -> None:
    names = argv or NAMES
    sections = _previous_sections() if argv else {}
    written = {"machine": machine(), "written": f"{dt.date.today().isoformat()}, viewselect {code_version()}"}
    for name in names:
        if name == "matmul":
            figures = {"matmul_2048_fp32_gflops": matmul_gflops(), **written}
        else:
            try:
                module = importlib.import_module(f"benchmarks.bench_{name}")
            except ModuleNotFoundError:
                continue
            print(f"running benchmarks/bench_{name}.py ...", flush=True)
            load = os.getloadavg()[0]  # other work on the machine: speeds from a loaded run say so
            figures = {**module.run(), "load_average_1min_at_start": load, **written}
        rows = "\n".join(f"| {k} | {_fmt(v)} |" for k, v in figures.items() if not isinstance(v, (dict, list)))
        sections[name] = f"## {name}\n\n| figure | value |\n| --- | --- |\n{rows}\n"
        if name != "matmul" and hasattr(module, "notes"):  # targets met or not, and why
            sections[name] += "\n" + module.notes(figures).strip() + "\n"
        print(sections[name], flush=True)
    header = (
        "# Benchmarks\n\n"
        f"Last written by `python -m benchmarks {' '.join(argv)}`".rstrip() + f" on {dt.date.today().isoformat()}, "
        f"viewselect {code_version()}, torch {torch.__version__} ({torch.get_num_threads()} threads), "
        f"{machine()}.\n"
        "Ratios compare two paths measured in the same run; each section is from the run that wrote it and names its "
        "machine (sections without a `machine` row predate that row: their machine is the one in this header at the "
        "commit that wrote them, `git log -p reports/benchmarks.md`).\n\n"
    )
    ordered = [sections[n] for n in NAMES if n in sections]
    write_text(REPORT, header + "\n".join(ordered))
    print(f"wrote {REPORT}")


if __name__ == "__main__":
    main(sys.argv[1:])
