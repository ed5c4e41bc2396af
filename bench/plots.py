"""PNG plots for the bench scripts (Debian's python3-matplotlib), embedded in
bench/RESULTS.md. Three shapes cover every benchmark:

  latency_distributions  the latencies of the measured thing beside its anchor,
                         as cumulative distributions on a log axis, p50 and p99
                         marked, so tails can be compared at a glance;
  per_trial              one value per trial (detection times, ratios), with the
                         goal drawn as a line;
  versus                 values against a parameter (servers, clients), with the
                         goal drawn as a line.

Each writes one PNG and returns its path. Plots are drawn off screen (Agg).
"""

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)
from matplotlib.ticker import MaxNLocator  # noqa: E402

_SIZE = (8, 4.5)
_DPI = 100


def _percentile(sorted_values, fraction):
    if not sorted_values:
        return float("nan")
    position = min(len(sorted_values) - 1, max(0, round(fraction * (len(sorted_values) - 1))))
    return sorted_values[position]


def _save(figure, path):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    figure.tight_layout()
    # No creation date in the file: the same figures give the same bytes.
    figure.savefig(path, dpi=_DPI, metadata={"Software": None})
    plt.close(figure)
    return path


def latency_distributions(path, title, series, unit="ms"):
    """`series`: label -> latencies (in `unit`). One cumulative curve each, on a
    log x axis, with its p50 and p99 in the legend and dotted at p99."""
    figure, axes = plt.subplots(figsize=_SIZE)
    for label, values in series.items():
        ordered = sorted(values)
        if not ordered:
            continue
        n = len(ordered)
        fractions = [(i + 1) / n for i in range(n)]
        p50 = _percentile(ordered, 0.50)
        p99 = _percentile(ordered, 0.99)
        (line,) = axes.step(ordered, fractions, where="post",
                            label=f"{label}: p50 {p50:.3g} {unit}, p99 {p99:.3g} {unit}")
        axes.axvline(p99, color=line.get_color(), linestyle=":", linewidth=1)
    axes.set_xscale("log")
    axes.set_xlabel(f"latency ({unit}, log scale)")
    axes.set_ylabel("fraction of requests at or below")
    axes.set_ylim(0, 1.01)
    axes.axhline(0.99, color="grey", linewidth=0.5)
    axes.grid(True, which="both", alpha=0.3)
    axes.set_title(title)
    axes.legend(loc="lower right", fontsize="small")
    return _save(figure, path)


def per_trial(path, title, series, ylabel, goals=None):
    """`series`: label -> one value per trial; `goals`: label -> a bound drawn as a
    dashed line (None: no goal)."""
    figure, axes = plt.subplots(figsize=_SIZE)
    for label, values in series.items():
        axes.plot(range(1, len(values) + 1), values, marker="o", linestyle="", label=label)
    for label, bound in (goals or {}).items():
        axes.axhline(bound, linestyle="--", color="grey", linewidth=1)
        axes.annotate(label, (0.99, bound), xycoords=("axes fraction", "data"),
                      ha="right", va="bottom", fontsize="small", color="dimgrey")
    axes.set_xlabel("trial")
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))  # trials are counted, not measured
    axes.set_ylabel(ylabel)
    axes.set_ylim(bottom=0)
    axes.grid(True, alpha=0.3)
    axes.set_title(title)
    axes.legend(loc="best", fontsize="small")
    return _save(figure, path)


def versus(path, title, x, series, xlabel, ylabel, goals=None, logy=False):
    """`x`: the parameter's values; `series`: label -> one value per x (None for a
    gap); `goals`: label -> a bound drawn as a dashed line."""
    figure, axes = plt.subplots(figsize=_SIZE)
    for label, values in series.items():
        points = [(a, b) for a, b in zip(x, values) if b is not None]
        axes.plot([a for a, _ in points], [b for _, b in points], marker="o", label=label)
    for label, bound in (goals or {}).items():
        axes.axhline(bound, linestyle="--", color="grey", linewidth=1)
        axes.annotate(label, (0.99, bound), xycoords=("axes fraction", "data"),
                      ha="right", va="bottom", fontsize="small", color="dimgrey")
    if logy:
        axes.set_yscale("log")
    else:
        axes.set_ylim(bottom=0)
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    axes.grid(True, alpha=0.3)
    axes.set_title(title)
    axes.legend(loc="best", fontsize="small")
    return _save(figure, path)
