"""Benchmark: the throughput model's error on its calibration points and on held-out points.

Fits the efficiencies of planner/costing/throughput.py (bandwidth, compute, per-step and per-request
overheads, all-reduce latency, MoE factor) on planner/data/throughput_calibration.yaml only, by
least squares on the log of predicted over measured output tokens/s (scipy.optimize), and reports
per point the prediction, the measurement and their ratio, and the geometric-mean and worst error
(an error of 1.25 is 25 % above or below), on the calibration points and on the measured points
of planner/data/throughput_holdout.yaml the fit never sees (outliers, with their reason, apart).
`--write DATE` stores the fit and both errors in planner/data/throughput.yaml; `--chart FILE.svg`
draws predicted against measured (docs/throughput-fit.svg). Run with `make bench` or
`python -m bench.throughput_bench`.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from scipy.optimize import least_squares

from planner.catalog import DATA_DIR
from planner.costing.throughput import Efficiencies, predict
from planner.costing.throughput_data import CalibrationPoint, ThroughputData, load_throughput_data

# The target on held-out points: geometric-mean error at most 1.25, no point beyond 2.
TARGET_GEOMETRIC_MEAN = 1.25
TARGET_WORST = 2.0

# Parameter order, their bounds (physical ranges) and a start. The MoE factor counts HBM passes
# of a token's hidden state per MoE layer (planner/costing/throughput.py moe_dispatch_s).
NAMES = (
    "bandwidth",
    "compute",
    "step_overhead_s",
    "request_overhead_s",
    "allreduce_latency_s",
    "moe_factor",
)
LOWER = np.array([0.5, 0.1, 1e-5, 1e-7, 1e-7, 1.0])
UPPER = np.array([0.85, 1.0, 0.05, 1e-3, 1e-3, 500.0])
START = np.array([0.8, 0.5, 1e-3, 1e-5, 1e-5, 20.0])


def _efficiencies(x: np.ndarray) -> Efficiencies:
    return Efficiencies(**{name: float(value) for name, value in zip(NAMES, x, strict=True)})


def log_errors(data: ThroughputData, eff: Efficiencies) -> list[float]:
    return [
        math.log(predict(data, eff, point) / point.output_tokens_per_second)
        for point in data.calibration
    ]


def fit(data: ThroughputData) -> Efficiencies:
    """Least squares on log ratios, in log-parameter space (every parameter is positive)."""

    def residuals(z: np.ndarray) -> np.ndarray:
        return np.array(log_errors(data, _efficiencies(np.exp(z))))

    result = least_squares(
        residuals, np.log(START), bounds=(np.log(LOWER), np.log(UPPER)), x_scale=1.0
    )
    return _efficiencies(np.exp(result.x))


def summary(data: ThroughputData, eff: Efficiencies) -> tuple[float, float, str]:
    return errors_of(data, eff, data.calibration)


def errors_of(
    data: ThroughputData, eff: Efficiencies, points: list[CalibrationPoint]
) -> tuple[float, float, str]:
    """Geometric-mean error, worst error and the worst point's label over these points."""
    errors = [math.log(predict(data, eff, p) / p.output_tokens_per_second) for p in points]
    gm = math.exp(sum(abs(e) for e in errors) / len(errors))
    worst = max(range(len(errors)), key=lambda k: abs(errors[k]))
    return gm, math.exp(abs(errors[worst])), points[worst].label()


def held_out(data: ThroughputData) -> list[CalibrationPoint]:
    """The held-out points the target is stated on: all but the outliers."""
    return [p for p in data.holdout if p.outlier is None]


def beyond(data: ThroughputData, eff: Efficiencies, limit: float) -> list[str]:
    """Labels of held-out points (outliers aside) the model misses by more than `limit`."""
    misses = []
    for p in held_out(data):
        ratio = predict(data, eff, p) / p.output_tokens_per_second
        if max(ratio, 1 / ratio) > limit:
            misses.append(p.label())
    return misses


def write_fit(eff: Efficiencies, data: ThroughputData, date: str, directory: Path) -> None:
    gm, worst, label = summary(data, eff)
    source = (
        f"fitted by bench/throughput_bench.py on the {len(data.calibration)} points of "
        "planner/data/throughput_calibration.yaml (shared/reference/throughput-calibration.md)"
    )
    values = {
        "bandwidth_efficiency": round(eff.bandwidth, 4),
        "compute_efficiency": round(eff.compute, 4),
        "step_overhead_ms": round(eff.step_overhead_s * 1e3, 4),
        "request_overhead_us": round(eff.request_overhead_s * 1e6, 3),
        "allreduce_latency_us": round(eff.allreduce_latency_s * 1e6, 3),
        "moe_factor": round(eff.moe_factor, 4),
    }
    path = directory / "throughput.yaml"
    text = path.read_text(encoding="utf-8")
    head = text[: text.index("\nfit:\n") + 1]
    lines = ["fit:"]
    for name, value in values.items():
        lines.append(f'  {name}: {{value: {value}, source: "{source}", date: "{date}"}}')
    # The error is stated for the rounded values, as stored.
    stored = yaml.safe_load("\n".join(lines))["fit"]
    rounded = Efficiencies(
        bandwidth=stored["bandwidth_efficiency"]["value"],
        compute=stored["compute_efficiency"]["value"],
        step_overhead_s=stored["step_overhead_ms"]["value"] / 1e3,
        request_overhead_s=stored["request_overhead_us"]["value"] / 1e6,
        allreduce_latency_s=stored["allreduce_latency_us"]["value"] / 1e6,
        moe_factor=stored["moe_factor"]["value"],
    )
    gm, worst, label = summary(data, rounded)
    h_gm, h_worst, h_label = errors_of(data, rounded, held_out(data))
    lines += [
        f"  points: {len(data.calibration)}",
        "  # exp(mean |log(predicted / measured)|): what a typical point is off by; then the worst",
        f"  geometric_mean_error: {math.ceil(gm * 1000) / 1000}",
        f"  worst_error: {math.ceil(worst * 1000) / 1000}",
        f'  worst_point: "{label}"',
        "  # the same on throughput_holdout.yaml (outliers aside): points the fit never saw",
        f"  holdout_points: {len(held_out(data))}",
        f"  holdout_geometric_mean_error: {math.ceil(h_gm * 1000) / 1000}",
        f"  holdout_worst_error: {math.ceil(h_worst * 1000) / 1000}",
        f'  holdout_worst_point: "{h_label}"',
        f"  holdout_beyond_2x: {len(beyond(data, rounded, TARGET_WORST))}",
        f'  source: "{source}"',
        f'  date: "{date}"',
    ]
    path.write_text(head + "\n".join(lines) + "\n", encoding="utf-8")


def _rows(data: ThroughputData, eff: Efficiencies, points: list[CalibrationPoint]) -> list[str]:
    rows = [f"{'point':<58} {'measured':>10} {'model':>10} {'ratio':>6}"]
    for point in points:
        predicted = predict(data, eff, point)
        ratio = predicted / point.output_tokens_per_second
        rows.append(
            f"{point.label():<58} {point.output_tokens_per_second:>10,.0f} "
            f"{predicted:>10,.0f} {ratio:>6.2f}"
        )
    return rows


def report(data: ThroughputData, eff: Efficiencies) -> str:
    gm, worst, label = summary(data, eff)
    h_gm, h_worst, h_label = errors_of(data, eff, held_out(data))
    misses = beyond(data, eff, TARGET_WORST)
    met = h_gm <= TARGET_GEOMETRIC_MEAN and not misses
    lines = [
        f"Calibration ({len(data.calibration)} points, fitted on):",
        *_rows(data, eff, data.calibration),
        f"calibration: geometric-mean error {gm:.3f}x, worst {worst:.3f}x ({label})",
        "",
        f"Held out ({len(held_out(data))} points, never fitted on):",
        *_rows(data, eff, held_out(data)),
        f"held out: geometric-mean error {h_gm:.3f}x, worst {h_worst:.3f}x ({h_label})",
        f"target (geometric mean <= {TARGET_GEOMETRIC_MEAN}, none beyond {TARGET_WORST:g}x): "
        + (
            "met"
            if met
            else f"MISSED ({len(misses)} beyond {TARGET_WORST:g}x: " + "; ".join(misses) + ")"
        ),
        "",
        "Outliers (held out, kept apart for the reason given):",
    ]
    for point in data.holdout:
        if point.outlier is not None:
            ratio = predict(data, eff, point) / point.output_tokens_per_second
            lines.append(f"{point.label()}: ratio {ratio:.2f} ({point.engine}: {point.outlier})")
    return "\n".join(lines)


def write_chart(data: ThroughputData, eff: Efficiencies, path: Path) -> None:
    """Predicted against measured output tokens/s, log-log, with the 1.25x and 2x bands: the
    same bytes for the same data (fixed hash salt, no date)."""
    import matplotlib

    matplotlib.use("Agg")
    matplotlib.rcParams["svg.hashsalt"] = "ai-infra-planner"
    from matplotlib import pyplot

    figure, axes = pyplot.subplots(figsize=(7, 7))
    groups: list[tuple[str, list[CalibrationPoint], str, str]] = [
        ("calibration (fitted on)", data.calibration, "o", "tab:blue"),
        ("held out", held_out(data), "^", "tab:orange"),
        ("held-out outliers", [p for p in data.holdout if p.outlier], "x", "tab:red"),
    ]
    values: list[float] = []
    for label, points, marker, color in groups:
        measured = [p.output_tokens_per_second for p in points]
        predicted = [predict(data, eff, p) for p in points]
        values += measured + predicted
        # Calibration points hollow, held-out ones filled, outliers crossed.
        style: dict[str, Any] = {"color": color}
        if marker == "o":
            style = {"edgecolors": color, "facecolors": "none"}
        axes.scatter(
            measured, predicted, marker=marker, s=22, linewidths=0.9,
            label=f"{label}: {len(points)}", **style,
        )  # fmt: skip
    low, high = min(values) / 1.5, max(values) * 1.5
    line = np.array([low, high])
    axes.plot(line, line, color="black", linewidth=0.8, label="predicted = measured")
    for factor, dashes in ((1.25, "--"), (2.0, ":")):
        label = f"{factor:g}x above and below"
        axes.plot(line, line * factor, color="grey", linestyle=dashes, linewidth=0.8, label=label)
        axes.plot(line, line / factor, color="grey", linestyle=dashes, linewidth=0.8)
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlim(low, high)
    axes.set_ylim(low, high)
    axes.set_xlabel("measured output tokens/s of one replica")
    axes.set_ylabel("predicted output tokens/s (planner/costing/throughput.py)")
    gm, worst, _ = summary(data, eff)
    h_gm, h_worst, _ = errors_of(data, eff, held_out(data))
    axes.set_title(
        f"Throughput model: calibration {gm:.3f}x / worst {worst:.2f}x, "
        f"held out {h_gm:.3f}x / worst {h_worst:.2f}x",
        fontsize=9,
    )
    axes.legend(fontsize=8, loc="upper left")
    axes.grid(True, which="major", linewidth=0.3)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, metadata={"Date": None})
    pyplot.close(figure)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--refit", action="store_true", help="fit again and report that fit")
    parser.add_argument("--write", metavar="DATE", help="refit and store it with this date")
    parser.add_argument("--chart", metavar="FILE.svg", type=Path, help="draw predicted/measured")
    args = parser.parse_args(argv)
    data = load_throughput_data()
    eff = Efficiencies.of(data.fit)
    if args.refit or args.write:
        eff = fit(data)
        print("fitted: " + ", ".join(f"{k}={getattr(eff, k):.4g}" for k in NAMES))
    if args.write:
        write_fit(eff, data, args.write, DATA_DIR)
        data = load_throughput_data()
        eff = Efficiencies.of(data.fit)
    if args.chart:
        write_chart(data, eff, args.chart)
        print(f"wrote {args.chart}")
        return 0
    print(report(data, eff))
    return 0


if __name__ == "__main__":
    sys.exit(main())
