"""The reference AutoAttack (Croce & Hein, 2020, "Reliable evaluation of adversarial robustness with an
ensemble of diverse parameter-free attacks"; PyPI ``pyautoattack``), as one more threat of the study.

Version ``standard`` (APGD-CE, APGD-T, FAB-T, Square) for a deterministic defense, ``rand`` (APGD-CE and
APGD-DLR, each with EOT over 20 draws) for one with latent noise. AutoAttack's own checks (randomness,
gradient masking, Square beating the white-box attacks, ...) are kept as ``notes``.

``apgd_only`` runs just version ``rand``'s pair, APGD-CE then APGD-DLR (one restart of 100 iterations each), on a
deterministic model too: a tenth of ``standard``'s cost, for comparing many models under one strong attack.
"""

from __future__ import annotations

import logging

from torch import Tensor, nn

EOT_DRAWS = 20  # what version rand averages each gradient over
APGD_PAIR = ("apgd-ce", "apgd-dlr")  # version rand's attacks


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


class ReferenceAutoAttack:
    """``(images, labels) -> adversarial images`` by ``pyautoattack.AutoAttack`` at ``eps`` (l-inf)."""

    def __init__(self, model: nn.Module, eps: float, stochastic: bool, seed: int, apgd_only: bool = False) -> None:
        self.model, self.eps, self.seed = model, eps, seed
        self.version = "rand" if stochastic else "custom" if apgd_only else "standard"
        self.notes: list[str] = []

    def __call__(self, images: Tensor, labels: Tensor) -> Tensor:
        from pyautoattack import AutoAttack  # a training-only dependency

        logger, collect = logging.getLogger("auto-attack"), _Collect()
        logger.addHandler(collect)
        try:
            custom = dict(attacks=list(APGD_PAIR)) if self.version == "custom" else {}
            adversary = AutoAttack(self.model, norm="Linf", eps=self.eps, version=self.version,
                                   device=images.device, seed=self.seed, **custom)
            if custom:
                adversary.apgd.n_restarts = 1  # as version rand sets it
            adv, _ = adversary.run_standard_evaluation(images, labels, batch_size=len(images))
        finally:
            logger.removeHandler(collect)
        self.notes = collect.messages
        return adv.detach()
