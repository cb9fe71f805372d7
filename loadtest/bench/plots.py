"""The benchmark's two figures, drawn from its JSON: throughput against concurrency, and latency CDFs."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def _label(summary: dict, key: str) -> str:
    return summary["engines"][key]["title"]


def throughput(summary: dict, path: Path) -> None:
    figure, axis = plt.subplots(figsize=(7, 4.2))
    for key, engine in summary["engines"].items():
        points = [p for p in engine["points"] if p.get("n")]
        axis.plot(
            [p["concurrency"] for p in points], [p["throughput_rps"] for p in points], "o-", label=_label(summary, key)
        )
    axis.set(
        xscale="log",
        xlabel="concurrent clients (closed loop)",
        ylabel="requests/s (200 OK)",
        title="/defended-classify throughput",
    )
    axis.set_xticks(summary["config"]["concurrency"], [str(c) for c in summary["config"]["concurrency"]])
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def latency_cdf(summary: dict, path: Path) -> None:
    levels = summary["config"]["concurrency"]
    figure, axes = plt.subplots(1, len(levels), figsize=(3.4 * len(levels), 3.6), sharey=True, squeeze=False)
    for axis, concurrency in zip(axes[0], levels, strict=True):
        for key, engine in summary["engines"].items():
            curve = next((p["cdf_ms"] for p in engine["points"] if p["concurrency"] == concurrency), [])
            if curve:
                quantiles = [i / (len(curve) - 1) for i in range(len(curve))]
                axis.plot(curve, quantiles, label=_label(summary, key))
        axis.axvline(8.0, color="grey", linestyle=":", linewidth=1)
        axis.set(xscale="log", xlabel="latency, ms (log)", title=f"concurrency {concurrency}")
        axis.grid(alpha=0.3)
    axes[0][0].set_ylabel("fraction of requests")
    handles, labels = axes[0][0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="lower center", ncol=3, fontsize=8, frameon=False)
    figure.suptitle("/defended-classify latency CDF (dotted: the paper's 8 ms)", fontsize=10)
    figure.tight_layout(rect=(0, 0.12, 1, 1))
    figure.savefig(path, dpi=110)
    plt.close(figure)
