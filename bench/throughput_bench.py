"""Benchmark: the throughput model's error on the calibration points, and its refit.

Fits the efficiencies of planner/throughput.py (bandwidth, compute, per-step and per-request
overheads, all-reduce latency, MoE factor) on planner/data/throughput_calibration.yaml only, by
least squares on the log of predicted over measured output tokens/s (scipy.optimize), and reports
per point the prediction, the measurement and their ratio, and the geometric-mean and worst error
(an error of 1.25 is 25 % above or below). `--write` stores the fitted values in
planner/data/throughput.yaml. Run with `make bench` or `python -m bench.throughput_bench`.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np
import yaml
from scipy.optimize import least_squares

from planner.catalog import DATA_DIR
from planner.throughput import (
    Efficiencies,
    ThroughputData,
    load_throughput_data,
    predict,
)

# Parameter order, their bounds (physical ranges) and a start.
NAMES = (
    "bandwidth",
    "compute",
    "step_overhead_s",
    "request_overhead_s",
    "allreduce_latency_s",
    "moe_factor",
)
LOWER = np.array([0.5, 0.1, 1e-5, 1e-7, 1e-7, 1.0])
UPPER = np.array([0.85, 1.0, 0.05, 1e-3, 1e-3, 4.0])
START = np.array([0.8, 0.5, 1e-3, 1e-5, 1e-5, 1.5])


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
    errors = log_errors(data, eff)
    gm = math.exp(sum(abs(e) for e in errors) / len(errors))
    worst = max(range(len(errors)), key=lambda k: abs(errors[k]))
    return gm, math.exp(abs(errors[worst])), data.calibration[worst].label()


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
    lines += [
        f"  points: {len(data.calibration)}",
        "  # exp(mean |log(predicted / measured)|): what a typical point is off by; then the worst",
        f"  geometric_mean_error: {math.ceil(gm * 1000) / 1000}",
        f"  worst_error: {math.ceil(worst * 1000) / 1000}",
        f'  worst_point: "{label}"',
        f'  source: "{source}"',
        f'  date: "{date}"',
    ]
    path.write_text(head + "\n".join(lines) + "\n", encoding="utf-8")


def report(data: ThroughputData, eff: Efficiencies) -> str:
    rows = []
    for point in data.calibration:
        predicted = predict(data, eff, point)
        ratio = predicted / point.output_tokens_per_second
        rows.append(
            f"{point.label():<50} {point.output_tokens_per_second:>10,.0f} "
            f"{predicted:>10,.0f} {ratio:>6.2f}"
        )
    gm, worst, label = summary(data, eff)
    return "\n".join(
        [
            f"{'point':<50} {'measured':>10} {'model':>10} {'ratio':>6}",
            *rows,
            f"geometric-mean error {gm:.3f}x, worst {worst:.3f}x ({label})",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--refit", action="store_true", help="fit again and report that fit")
    parser.add_argument("--write", metavar="DATE", help="refit and store it with this date")
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
    print(report(data, eff))
    return 0


if __name__ == "__main__":
    sys.exit(main())
