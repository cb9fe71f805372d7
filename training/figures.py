"""The matplotlib figures of docs/results.md."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402


def sweep(manifest: dict, path: Path) -> None:
    """Accuracy against eps, no defense vs each purifier, FGSM and PGD side by side, with 95% CIs."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for ax, (attack, block) in zip(axes, manifest["metrics"]["sweep"].items()):
        eps = [float(e) for e in block["points"]]
        for series in next(iter(block["points"].values())):
            rows = [block["points"][e][series] for e in block["points"]]
            acc = [r["accuracy"] for r in rows]
            lo = [r["ci95"][0] for r in rows]
            hi = [r["ci95"][1] for r in rows]
            ax.plot(eps, acc, marker="o", ms=3, label=series)
            ax.fill_between(eps, lo, hi, alpha=0.2)
        ax.set_title(f"{manifest['dataset']}: {attack.upper()} (n={block['n']})")
        ax.set_xlabel("epsilon (l-inf)")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("test accuracy")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def reconstructions(rows: dict[str, torch.Tensor], path: Path) -> None:
    """A grid: one row per named batch of N x 1 x H x W images in [0, 1]."""
    n = len(next(iter(rows.values())))
    fig, axes = plt.subplots(len(rows), n, figsize=(1.2 * n, 1.3 * len(rows)))
    for r, (name, images) in enumerate(rows.items()):
        for c in range(n):
            ax = axes[r][c]
            ax.imshow(images[c, 0].cpu().numpy(), cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[r][0].set_ylabel(name, fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
