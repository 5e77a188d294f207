"""The training-recipe ablations: their table in ``reports/training-recipe.md`` and ``reports/learning-curve.png``.

    python -m benchmarks.recipe [--runs runs/recipe] [--default-log reports/default-model-log.csv]

Each ablation is a ``viewselect train-model --config configs/recipe/NAME.toml --out runs/recipe/NAME`` run;
its per-epoch ``log.csv`` is copied to ``reports/recipe/NAME.csv`` (so the table and the figure can be
regenerated from the repository alone), and ``runs/recipe/NAME/done`` holds its wall time. The table
between the ``runs`` markers of the report is rewritten; the prose around it is not.
"""

from __future__ import annotations

import argparse
import csv
import io
import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
REPORTS = REPO / "reports"
BEGIN, END = "<!-- runs:begin -->", "<!-- runs:end -->"


def _rows(path: Path) -> list[dict]:
    return list(csv.DictReader(io.StringIO(path.read_text())))


def _images_seen(cfg_path: Path, rows: list[dict]) -> list[int]:
    import tomllib

    bs = tomllib.loads(cfg_path.read_text())["optim"]["batch_size"]
    return [int(r["step"]) * bs for r in rows]


def collect(runs: Path) -> dict[str, dict]:
    """Copy every finished run's log into ``reports/recipe/``; returns ``{name: {rows, wall_s, config}}``."""
    out_dir = REPORTS / "recipe"
    out_dir.mkdir(exist_ok=True)
    found = {}
    for run in sorted(p for p in runs.iterdir() if (p / "log.csv").is_file()) if runs.is_dir() else []:
        shutil.copyfile(run / "log.csv", out_dir / f"{run.name}.csv")
        if (run / "done").is_file():
            (out_dir / f"{run.name}.wall").write_text((run / "done").read_text())
    for log in sorted(out_dir.glob("*.csv")):
        wall = out_dir / f"{log.stem}.wall"
        found[log.stem] = {"rows": _rows(log), "config": REPO / "configs" / "recipe" / f"{log.stem}.toml",
                           "wall_s": int(wall.read_text().split("=")[1]) if wall.is_file() else None}
    return found


def table(found: dict[str, dict]) -> str:
    head = ("| run | config | images seen | train RR (mm) | val RR (mm) | val Global (mm) | val sample std (mm) "
            "| train images/s | wall |\n|---|---|---:|---:|---:|---:|---:|---:|---:|\n")
    lines = []
    for name, f in found.items():
        r = f["rows"][-1]
        seen = _images_seen(f["config"], f["rows"])[-1] if f["config"].is_file() else None
        wall = f"{f['wall_s'] / 60:.1f} min" if f["wall_s"] else "–"
        speed = sum(float(x["train_images_per_s"]) for x in f["rows"]) / len(f["rows"])
        lines.append(f"| {name} | `configs/recipe/{name}.toml` | {seen:,} | {float(r['train_mpjpe_rr_mm']):.1f} | "
                     f"{float(r['val_mpjpe_rr_mm']):.1f} | {float(r['val_mpjpe_global_mm']):.1f} | "
                     f"{float(r['val_sample_std_mm']):.1f} | {speed:.0f} | {wall} |")
    return head + "\n".join(lines) + "\n"


def figure(found: dict[str, dict], curves: list[str], default_log: Path | None, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    series = []
    if default_log is not None and default_log.is_file():
        rows = _rows(default_log)
        series.append(("default before the recipe (shipped until now)", [int(r["step"]) * 32 for r in rows], rows))
    final = REPORTS / "default-model-log.csv"  # the shipped model's run: configs/default.toml, batch 32
    if final.is_file() and "train_j3d_rr" in final.read_text().splitlines()[0]:
        rows = _rows(final)
        series.append(("final: configs/default.toml (the chosen recipe)", [int(r["step"]) * 32 for r in rows], rows))
    for name in curves:
        if name in found:
            f = found[name]
            series.append((name, _images_seen(f["config"], f["rows"]), f["rows"]))
    for label, x, rows in series:
        ax.plot([v / 1000 for v in x], [float(r["val_mpjpe_rr_mm"]) for r in rows], marker="o", ms=3, label=label)
    ax.set_xlabel("training images seen (thousands)")
    ax.set_ylabel("validation mode MPJPE RR (mm)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=Path, default=REPO / "runs" / "recipe")
    ap.add_argument("--default-log", type=Path, default=REPORTS / "recipe" / "before" / "default-model-log.csv")
    ap.add_argument("--curves", default="", help="comma list of ablation runs drawn beside the two defaults")
    a = ap.parse_args(argv)
    found = collect(a.runs)
    report = REPORTS / "training-recipe.md"
    text = report.read_text() if report.is_file() else f"# Training recipe\n\n{BEGIN}\n{END}\n"
    pre, rest = text.split(BEGIN, 1)
    post = rest.split(END, 1)[1]
    report.write_text(pre + BEGIN + "\n" + table(found) + END + post)
    curves = [c for c in a.curves.split(",") if c]
    figure(found, curves, a.default_log, REPORTS / "learning-curve.png")
    print(f"wrote {report} and {REPORTS / 'learning-curve.png'} ({len(found)} runs)")


if __name__ == "__main__":
    main()
