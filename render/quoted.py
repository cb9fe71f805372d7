"""Figures that sentences quote, filled from the JSON that holds them, so that a re-measure updates the prose.

A hand-written page marks each figure it quotes with a name: ``a p95 of <!-- fig cert-p95-mnist -->31.6<!-- /fig -->
ms``. ``render/figures.toml`` says where each name comes from and how it is written:

    [cert-p95-mnist]
    from = "docs/certificate-cost.json#/models/mnist~1ibp-cnn7/batch1/certify/p95_ms"
    format = ".1f"

``from`` is a JSON file (relative to the repository) and a JSON pointer into it (RFC 6901; ``*`` takes every key
or item at that level, and ``k=v&k2=v2`` the items whose fields have those values, so that a figure names its
row, not its position); ``A,B`` takes the values of both pointers; ``A÷B`` is the ratio of two pointers into the
same file. ``format`` is a Python format
spec (``.1%`` writes a fraction as a percentage), after an optional reduction of the values selected (``min:``,
``max:``, ``sum:``); an optional ``scale`` multiplies the figure first (``scale = 1e-9`` writes bytes as GB).
``fill`` rewrites each marked figure from its source; the prose around it is never touched.
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

FIGURE = re.compile(r"<!-- fig (?P<name>[\w.-]+) -->(?P<value>.*?)<!-- /fig -->")
REGISTRY = Path(__file__).with_name("figures.toml")
REDUCTIONS = {"min": min, "max": max, "sum": sum}


class FigureError(ValueError):
    """A marked figure whose source, pointer or format does not give one number."""


def _select(document, pointer: str) -> list:
    """Every value the pointer reaches; ``*`` fans out over a level."""
    found = [document]
    for token in pointer.split("/")[1:]:
        token = token.replace("~1", "/").replace("~0", "~")
        step = []
        for node in found:
            if token == "*":
                step.extend(node.values() if isinstance(node, dict) else node)
            elif "=" in token:
                wanted = dict(condition.split("=", 1) for condition in token.split("&"))
                step.extend(item for item in (node.values() if isinstance(node, dict) else node)
                            if isinstance(item, dict) and all(str(item.get(k)) == v for k, v in wanted.items()))
            elif isinstance(node, dict) and token in node:
                step.append(node[token])
            elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
                step.append(node[int(token)])
            else:
                raise FigureError(f"{pointer!r}: no {token!r}")
        found = step
    return found


def value(root: Path, origin: str, spec: str, scale: float = 1.0) -> str:
    """The figure at ``origin`` (``FILE#POINTER``), times ``scale``, written as ``spec``."""
    source, _, pointer = origin.partition("#")
    path = root / source
    if not path.is_file():
        raise FigureError(f"{source}: no such file")
    document = json.loads(path.read_text())
    reduce, _, spec = spec.rpartition(":") if ":" in spec else ("", "", spec)
    if "÷" in pointer:
        over, under = (_select(document, p) for p in pointer.split("÷", 1))
        values = [a / b for a, b in zip(over, under, strict=True)]
    else:
        values = [found for part in pointer.split(",") for found in _select(document, part)]
    if reduce:
        if reduce not in REDUCTIONS:
            raise FigureError(f"{spec!r}: reduce with one of {sorted(REDUCTIONS)}, not {reduce!r}")
        values = [REDUCTIONS[reduce](values)]
    if len(values) != 1 or not isinstance(values[0], (int, float)) or isinstance(values[0], bool):
        raise FigureError(f"{source}#{pointer}: {len(values)} values, not one number (reduce with min:, max: or sum:)")
    return format(values[0] * scale if scale != 1.0 else values[0], spec)


def registry(path: Path = REGISTRY) -> dict[str, dict]:
    return tomllib.loads(path.read_text())


def fill(text: str, root: Path, figures: dict[str, dict], where: str = "") -> str:
    """``text`` with every marked figure rewritten from its source in ``figures`` (``registry()``)."""

    def filled(match: re.Match) -> str:
        try:
            if match["name"] not in figures:
                raise FigureError(f"no figure {match['name']!r} in {REGISTRY.name}")
            entry = figures[match["name"]]
            figure = value(root, entry["from"], entry["format"], entry.get("scale", 1.0))
        except FigureError as exc:
            raise FigureError(f"{where}: {match['name']}: {exc}") from exc
        return match[0].replace(f"-->{match['value']}<!--", f"-->{figure}<!--", 1)

    return FIGURE.sub(filled, text)


# What a sentence may not type by hand: a percentage, a time (ms, µs, core-ms), a rate, a size, or a ratio (× or x).
MEASURED = re.compile(r"(?<![\w.])\d(?:[\d,]*\d)?(?:\.\d+)?\s?(?:%|(?:core-)?ms\b|µs\b|req/s\b|[kMG]i?B\b|[×x](?![\d\w]))")
CONFIDENCE = re.compile(r"\b\d+% (?:CIs?|confidence)\b")  # a confidence level is a choice, not a measurement
# a goal or a bound ("p95 ≤ 8 ms", "≥ 95%", "target 85%"), not a measurement
GOAL = re.compile(r"(?:[≤≥<>]|\btargets?)\s?\d[\d,.]*\s?\S*")
UNQUOTED = re.compile(r"```.*?```|`[^`\n]*`|<!-- generated: (\S+) -->.*?<!-- end generated: \1 -->|"
                      r"<!-- fig .*?<!-- /fig -->|<!--.*?-->|\]\([^)]*\)", re.S)


def hand_typed(text: str) -> list[str]:
    """The measured figures that ``text``'s prose types by hand: outside code, generated blocks, marked
    figures and link targets."""
    prose = GOAL.sub("", CONFIDENCE.sub("", UNQUOTED.sub("", text)))
    return MEASURED.findall(prose)
