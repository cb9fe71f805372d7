"""The benchmark's two figures, drawn from its JSON: throughput against concurrency, and latency CDFs."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


OFF_SCALE = "floor"  # the fixed-body floor: tens of thousands of requests/s, it would flatten every real engine


def _label(summary: dict, key: str) -> str:
    return summary["engines"][key]["title"]


def styles(keys: list[str]) -> dict[str, dict]:
    """One look per engine, no two alike: the service bold and black, its variants dashed, the floors dotted,
    the peers solid, each group in its own palette."""
    colours, peers = plt.get_cmap("tab10").colors, plt.get_cmap("Dark2").colors
    out, seen = {}, {}
    for key in keys:
        group = "ours" if key == "ours" else "variant" if key.startswith("ours-") else \
            "floor" if key.startswith("floor") else "peer"
        n = seen[group] = seen.get(group, -1) + 1
        out[key] = {
            "ours": {"color": "black", "linewidth": 2.4, "linestyle": "-", "marker": "o"},
            "variant": {"color": colours[(n + 1) % 10], "linewidth": 1.2, "linestyle": "--", "marker": "."},
            "floor": {"color": ("grey", "dimgrey")[n % 2], "linewidth": 1.2, "linestyle": ":", "marker": "x"},
            "peer": {"color": peers[n % len(peers)], "linewidth": 1.6, "linestyle": "-", "marker": "s"},
        }[group]
    return out


def throughput(summary: dict, path: Path) -> None:
    """Throughput against concurrency for every engine but the fixed-body floor (named in the title)."""
    figure, axis = plt.subplots(figsize=(8.5, 4.4))
    keys = [key for key in summary["engines"] if key != OFF_SCALE]
    look = styles(list(summary["engines"]))
    for key in keys:
        points = [p for p in summary["engines"][key]["points"] if p.get("n")]
        axis.plot([p["concurrency"] for p in points], [p["throughput_rps"] for p in points],
                  label=_label(summary, key), markersize=5, **look[key])
    axis.set(
        xscale="log",
        xlabel="concurrent clients (closed loop)",
        ylabel="requests/s (200 OK)",
    )
    axis.set_title("/defended-classify throughput\n(the bare-ASGI floor with a fixed body is off this scale)",
                   fontsize=10)
    axis.set_xticks(summary["config"]["concurrency"], [str(c) for c in summary["config"]["concurrency"]])
    axis.set_ylim(bottom=0)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def latency_cdf(summary: dict, path: Path) -> None:
    levels, look = summary["config"]["concurrency"], styles(list(summary["engines"]))
    rows = -(-len(summary["engines"]) // 3)  # the legend's rows, three engines a row, under the panels
    figure, axes = plt.subplots(1, len(levels), figsize=(3.4 * len(levels), 3.2 + 0.22 * rows), sharey=True,
                                squeeze=False)
    for axis, concurrency in zip(axes[0], levels, strict=True):
        for key, engine in summary["engines"].items():
            curve = next((p["cdf_ms"] for p in engine["points"] if p["concurrency"] == concurrency), [])
            if curve:
                quantiles = [i / (len(curve) - 1) for i in range(len(curve))]
                axis.plot(curve, quantiles, label=_label(summary, key),
                          **{k: v for k, v in look[key].items() if k != "marker"})
        axis.axvline(8.0, color="crimson", linestyle="-.", linewidth=1)
        axis.set(xscale="log", xlabel="latency, ms (log)", title=f"concurrency {concurrency}")
        axis.grid(alpha=0.3)
    axes[0][0].set_ylabel("fraction of requests")
    handles, labels = axes[0][0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="lower center", ncol=3, fontsize=8, frameon=False)
    figure.suptitle("/defended-classify latency CDF (dash-dot: the paper's 8 ms)", fontsize=10)
    figure.tight_layout(rect=(0, 0.055 * rows + 0.02, 1, 1))
    figure.savefig(path, dpi=110)
    plt.close(figure)
