"""``python -m loadtest.queryattack``: the query-attack and benign measurements of docs/security.md."""

import argparse
import json
import time
from dataclasses import asdict
from functools import partial
from pathlib import Path

from loadtest.queryattack import measure, overhead
from render import queryattack as report
from loadtest.server import serve
from service.config import REPO_ROOT

DETAILS = ("full", "topk", "label")


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m loadtest.queryattack", description=__doc__)
    parser.add_argument("--dataset", action="append", choices=sorted(measure.EPS), help="repeatable; default: both")
    parser.add_argument("--n", type=int, default=100, help="test images attacked per configuration")
    parser.add_argument("--budget", type=int, default=1000, help="queries per attack run")
    parser.add_argument("--threads", type=int, default=8, help="attack runs (clients) side by side")
    parser.add_argument("--benign-clients", type=int, default=50, help="clients per benign scenario")
    parser.add_argument("--per-client", type=int, default=100, help="requests per benign client")
    parser.add_argument("--skip", action="append", default=[], choices=("attacks", "benign", "overhead"))
    parser.add_argument("--only", action="append", default=[], metavar="ATTACK/DETAIL/MODE",
                        help="repeatable: re-run only these attack configurations (e.g. hopskipjump/label/flag) "
                             "and keep the other stored ones")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "docs" / "security-queries.json")
    parser.add_argument("--doc", type=Path, default=report.DOC, help="the page whose measured block is rewritten")
    parser.add_argument("--work", type=Path, default=REPO_ROOT / "runs" / "queryattack")
    return parser.parse_args(argv)


CONFIGS = {  # detector mode -> (attack, response detail) runs, each run its own client
    "flag": [("square", "full"), ("square", "topk"), ("square", "label"), ("hopskipjump", "label")],
    "block": [("square", "label"), ("hopskipjump", "label")],
}


def attacks(args: argparse.Namespace, dataset: str, stored: dict | None = None) -> dict:
    """Every configuration of ``CONFIGS`` (or only ``args.only``, the rest kept from ``stored``), in that order."""
    images, labels = measure.load_testset(dataset, args.n)
    keep = bool(stored and args.only)
    runs = dict(stored["runs"]) if keep else {}
    summaries = {f"{s['attack']}/{s['detail']}/{s['defense']}": s for s in stored["summaries"]} if keep else {}
    for defense, configs in CONFIGS.items():
        configs = [(a, d) for a, d in configs if not args.only or f"{a}/{d}/{defense}" in args.only]
        if not configs:
            continue
        groups = {(attack, detail): measure.keys(f"{attack}-{detail}-{defense}", args.n) for attack, detail in configs}
        key_detail = {key: detail for (_, detail), group in groups.items() for key in group}
        log = args.work / f"{dataset}-{defense}.log"
        with measure.server(log, dataset, defense, "label", key_detail, list(key_detail)) as running:
            for (attack, detail), keys in groups.items():
                summary, detail_runs = measure.run_attacks(
                    running.url, dataset, attack, keys, images, labels, args.budget, args.threads, detail, defense
                )
                print(json.dumps(asdict(summary)), flush=True)
                summaries[f"{attack}/{detail}/{defense}"] = asdict(summary)
                runs[f"{attack}/{detail}/{defense}"] = detail_runs
    order = [f"{a}/{d}/{m}" for m, configs in CONFIGS.items() for a, d in configs]
    return {"summaries": [summaries[k] for k in order if k in summaries], "runs": {k: runs[k] for k in order if k in runs}}


def benign(args: argparse.Namespace, dataset: str) -> list[dict]:
    scenarios = measure.benign_queries(dataset, args.benign_clients, args.per_client, offset=args.n)
    clients = args.benign_clients * len(scenarios)
    keys = measure.keys("benign", clients)
    out = []
    with measure.server(args.work / f"{dataset}-benign.log", dataset, "flag", "full", {}, keys) as running:
        for k, (name, queries) in enumerate(scenarios.items()):
            group = keys[k * args.benign_clients : (k + 1) * args.benign_clients]
            result = measure.run_benign(running.url, dataset, name, group, queries, args.threads)
            print(json.dumps(result), flush=True)
            out.append(result)
    return out


def costs(args: argparse.Namespace, dataset: str) -> dict:
    images, _ = measure.load_testset(dataset, 500, offset=5000)
    settings = {"datasets": f'["{dataset}"]', "default_dataset": dataset}
    # a second "off" server is the control: its gap to the first is this machine's noise in the same run
    with serve(args.work / "off.log", query_defense="off", **settings) as off, \
            serve(args.work / "control.log", query_defense="off", **settings) as control, \
            serve(args.work / "flag.log", query_defense="flag", **settings) as flag:
        urls = {"off": off.url, "control": control.url, "flag": flag.url}
        result = {
            "guard_us_per_image": measure.guard_cost_us(dataset),
            "p50_ms_c1": overhead.latency_c1(urls, dataset, images, rounds=2000),
            "c32": overhead.throughput_c32(urls, dataset, images, seconds=5.0, turns=3),
        }
    result["added_p50_ms_c1"] = round(result["p50_ms_c1"]["flag"] - result["p50_ms_c1"]["off"], 3)
    result["control_p50_ms_c1"] = round(result["p50_ms_c1"]["control"] - result["p50_ms_c1"]["off"], 3)
    print(json.dumps(result), flush=True)
    return result


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    results = json.loads(args.out.read_text()) if args.out.exists() else {}
    for dataset in args.dataset or sorted(measure.EPS, reverse=True):
        entry = results.setdefault(dataset, {})
        entry["config"] = {"n": args.n, "budget": args.budget, "eps": measure.EPS[dataset], "threads": args.threads,
                           "measured": time.strftime("%Y-%m-%d")}
        steps = {"attacks": partial(attacks, stored=entry.get("attacks")), "benign": benign, "overhead": costs}
        for name, step in steps.items():
            if name not in args.skip:
                entry[name] = step(args, dataset)
                args.out.write_text(json.dumps(results, indent=1) + "\n")
    report.write(results, args.doc)


if __name__ == "__main__":
    main()
