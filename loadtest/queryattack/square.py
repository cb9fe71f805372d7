"""Square Attack (Andriushchenko et al., ECCV 2020, "Square Attack: a query-efficient black-box adversarial
attack via random search"), ℓ∞, one image, through an ``Oracle``.

The margin loss uses whatever scores the answer carries: every class (``full``), the top k (``topk``;
classes not shown count as 0) or none (``label``: a candidate is better only when the label already changed,
so the search is blind). A refused query (429) teaches nothing and is spent all the same.
"""

from dataclasses import dataclass

import numpy as np

from loadtest.queryattack.oracle import Answer, Oracle, ball, on_grid

P_HALVINGS = (10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000)


@dataclass(frozen=True)
class Outcome:
    success: bool
    queries: int  # spent until success, else the whole budget
    first_flagged: int | None  # 1-based index of the first answer that carried the detector's flag
    refused: int


class Tally:
    """Counts queries, the first flagged one and refusals as answers come in."""

    def __init__(self) -> None:
        self.queries, self.refused, self.first_flagged = 0, 0, None

    def add(self, answers: list[Answer]) -> None:
        for answer in answers:
            self.queries += 1
            self.refused += answer.label is None
            if answer.flagged and self.first_flagged is None:
                self.first_flagged = self.queries

    def outcome(self, success: bool) -> Outcome:
        return Outcome(success, self.queries, self.first_flagged, self.refused)


def margin(answer: Answer, label: int) -> float:
    """Below 0 once misclassified; +inf for a refused query."""
    if answer.label is None:
        return np.inf
    if answer.scores is None:
        return -1.0 if answer.label != label else 1.0
    others = [p for c, p in answer.scores.items() if c != label]
    return answer.scores.get(label, 0.0) - max(others, default=0.0) if answer.label == label else -1.0


def p_selection(p_init: float, query: int, budget: int) -> float:
    """The square's share of the image, halved on the paper's schedule (rescaled to 10,000 queries)."""
    scaled = int(query / budget * 10000)
    return p_init / 2 ** sum(scaled > step for step in P_HALVINGS)


def square(
    oracle: Oracle, x: np.ndarray, label: int, eps: float, budget: int, p_init: float = 0.8, seed: int = 0
) -> Outcome:
    """Misclassify ``x`` (``(C, H, W)`` in [0, 1]) within ``budget`` queries, staying within ``eps`` in ℓ∞."""
    rng, tally = np.random.default_rng(seed), Tally()
    channels, height, width = x.shape
    low, high = ball(x, eps)
    best = np.clip(on_grid(x + rng.choice([-eps, eps], size=(channels, 1, width))), low, high)
    answers = oracle(best[None])
    tally.add(answers)
    best_margin = margin(answers[0], label)
    while best_margin >= 0 and tally.queries < budget:
        side = int(np.clip(round(np.sqrt(p_selection(p_init, tally.queries, budget) * height * width)), 1, height - 1))
        top, left = rng.integers(0, height - side + 1), rng.integers(0, width - side + 1)
        window = (slice(None), slice(top, top + side), slice(left, left + side))
        candidate = best.copy()
        for _ in range(10):  # a window that changes nothing would be a wasted query
            candidate[window] = x[window] + rng.choice([-eps, eps], size=(channels, 1, 1))
            candidate = np.clip(on_grid(candidate), low, high)
            if np.abs(candidate[window] - best[window]).max() > 0:
                break
        answers = oracle(candidate[None])
        tally.add(answers)
        new_margin = margin(answers[0], label)
        if new_margin < best_margin:
            best, best_margin = candidate, new_margin
    return tally.outcome(best_margin < 0)
