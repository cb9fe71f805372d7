"""The reference AutoAttack (Croce & Hein, 2020, "Reliable evaluation of adversarial robustness with an
ensemble of diverse parameter-free attacks"; PyPI ``pyautoattack``), as one more threat of the study.

Version ``standard`` (APGD-CE, APGD-T, FAB-T, Square) for a deterministic defense, ``rand`` (APGD-CE and
APGD-DLR, each with EOT over 20 draws) for one with latent noise. AutoAttack's own checks (randomness,
gradient masking, Square beating the white-box attacks, ...) are kept as ``notes``.
"""

from __future__ import annotations

import logging

from torch import Tensor, nn

EOT_DRAWS = 20  # what version rand averages each gradient over


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


class ReferenceAutoAttack:
    """``(images, labels) -> adversarial images`` by ``pyautoattack.AutoAttack`` at ``eps`` (l-inf)."""

    def __init__(self, model: nn.Module, eps: float, stochastic: bool, seed: int) -> None:
        self.model, self.eps, self.seed = model, eps, seed
        self.version = "rand" if stochastic else "standard"
        self.notes: list[str] = []

    def __call__(self, images: Tensor, labels: Tensor) -> Tensor:
        from pyautoattack import AutoAttack  # a training-only dependency

        logger, collect = logging.getLogger("auto-attack"), _Collect()
        logger.addHandler(collect)
        try:
            adversary = AutoAttack(self.model, norm="Linf", eps=self.eps, version=self.version,
                                   device=images.device, seed=self.seed)
            adv, _ = adversary.run_standard_evaluation(images, labels, batch_size=len(images))
        finally:
            logger.removeHandler(collect)
        self.notes = collect.messages
        return adv.detach()
