"""The headline tables of the README and docs/robustness.md: one row per served pipeline, the certified models
beside their targets and the published results, and the certificate's cost; from the manifests,
``docs/latency.json``, ``docs/published.json`` and ``docs/certificate-cost.json`` (``python -m training readme``
hands them over)."""

from __future__ import annotations

from pathlib import Path

from render.markdown import markers, minutes, splice, table

OBLIVIOUS = "pgd-0.15"  # the paper's PGD (eps 0.15, crafted on the undefended classifier)
HEADER = ["pipeline", "method", "clean", "AutoAttack", "worst case over the attacks run", "certified",
          "paper's PGD (oblivious)", "p95 ms"]


def _pct(entry: dict | None, n: bool = False, ci: bool = False) -> str:
    if not entry:
        return "–"
    text = f"{100 * entry['accuracy']:.1f}%"
    if ci and entry.get("ci95"):
        text += " [{:.1f}, {:.1f}]".format(*(100 * bound for bound in entry["ci95"]))
    return text + (f" (n={entry['n']:,})" if n else "")


def _worst(entry: dict | None, n: bool) -> str:
    """The worst case per image, and over how many kinds of attack (the suite's that apply to the pipeline)."""
    if not entry:
        return "–"
    return _pct(entry) + f" ({entry['attacks']} attacks" + (f", n={entry['n']:,})" if n else ")")


def _share(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.2f}".rstrip("0").rstrip(".") + "%"


def certified_models(manifests: list[dict], references: dict) -> str:
    """Each served certified pipeline beside its dataset's target and published results: certified (by the
    served bounds), AutoAttack and clean accuracy with Wilson 95% CIs, and how it was trained."""
    rows = []
    for manifest in manifests:
        dataset = manifest["dataset"]
        reference = references["datasets"].get(dataset, {})
        for name, pipeline in manifest["pipelines"].items():
            metrics = pipeline.get("metrics", {})
            if not metrics.get("certified"):
                continue
            model = next(m for m in manifest["models"].values() if m["file"] == pipeline["classifier"])
            tc = model.get("training", {})
            seconds = manifest.get("training_wall_time_s", {}).get("train-" + Path(tc.get("out", "")).stem)
            trained = ", ".join(part for part in (
                f"width {tc['width']}" if "width" in tc else "", f"{tc['epochs']} epochs" if "epochs" in tc else "",
                tc.get("precision", ""), minutes(seconds)) if part)
            rows.append([f"{dataset}, {metrics['eps']}", f"`{name}`", _pct(metrics["certified"], ci=True),
                         _pct(metrics.get("autoattack"), n=True, ci=True), _pct(metrics.get("clean"), ci=True),
                         str(metrics["certified"].get("violations", "–")), trained])
        target = reference.get("target")
        if target:
            rows.append([f"{dataset}, {reference['eps']}", "target", f"≥ {_share(target['certified'])}",
                         f"≥ {_share(target['autoattack'])} (n ≥ 1,000)", f"≥ {_share(target['clean'])}", "0", ""])
        for published in reference.get("published", []):
            rows.append([f"{dataset}, {reference['eps']}", f"{published['name']} ({published['source']})",
                         _share(published["certified"]), _share(published["autoattack"]), _share(published["clean"]),
                         "", ""])
    return table(["dataset, ε", "model", "certified", "AutoAttack", "clean", "certified images flipped",
                  "training"], rows)


def rows(manifest: dict, latency: dict) -> list[list[str]]:
    """One row per served pipeline, the default first."""
    default = manifest["default_pipeline"]
    names = sorted(manifest["pipelines"], key=lambda name: name != default)
    by_file = {m["file"]: name for name, m in manifest["models"].items()}
    out = []
    for name in names:
        pipeline = manifest["pipelines"][name]
        metrics = pipeline.get("metrics", {})
        purifier = by_file.get(pipeline.get("purifier"))
        clean = metrics.get("clean") or manifest["metrics"]["clean"].get(purifier)
        oblivious = manifest["metrics"]["table"][OBLIVIOUS].get(purifier) if purifier else None
        p95 = latency.get(name, {}).get("p95_ms")
        out.append([f"`{name}`" + (" (default)" if name == default else ""), pipeline.get("method", "–"),
                    _pct(clean), _pct(metrics.get("autoattack"), n=True),
                    _worst(metrics.get("worst_case"), n=not metrics.get("autoattack")),
                    _pct(metrics.get("certified")), _pct(oblivious), f"{p95:.1f}" if p95 else "–"])
    return out


def headline(manifest: dict, latency: dict) -> str:
    return table(HEADER, rows(manifest, latency))


def certificate_cost(measured: dict) -> str:
    """The certificate's cost beside the model's own forward pass, per certified model and batch size: the
    certificate at the pipeline's eps alone, and with the radius search."""
    rows = []
    for name, by_batch in measured["models"].items():
        for batch, r in by_batch.items():
            rows.append([f"`{name}`", batch.removeprefix("batch")]
                        + [f"{r[k]['p50_ms']:.2f} / {r[k]['p95_ms']:.2f}" for k in ("forward", "at_eps", "certify")]
                        + [f"{r['ratio_p50']:.1f}x"])
    search = measured["radius_search"]
    return table(["model", "batch", "forward p50 / p95 ms", "certificate at ε p50 / p95 ms",
                  "with radius p50 / p95 ms", "with radius / forward"], rows) + (
        f"\n\nIn process on the bundled test images, {measured['threads']} thread, a grey-level radius search of "
        f"{search['probes']} levels a round, at most {search['rounds']} rounds (`{measured['command']}`).")


def page(text: str, manifests: list[dict], latency: dict, published: dict | None, cost: dict | None) -> str:
    """``text`` with each generated block it has rendered afresh: every dataset's headline, the certified
    models beside the published results, and the certificate's cost."""
    for manifest in manifests:
        dataset = manifest["dataset"]
        text = splice(text, f"headline-{dataset}", headline(manifest, latency.get(dataset, {})))
    if published and markers("certified-models")[0] in text:
        text = splice(text, "certified-models", certified_models(manifests, published))
    if cost and markers("certificate-cost")[0] in text:
        text = splice(text, "certificate-cost", certificate_cost(cost))
    return text
