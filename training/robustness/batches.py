"""What one step of the adversarial recipes feeds the classifier: batches transformed on the fly (by an attack,
or through a purifier), the recipe that pairs that transform with its validation, and the losses beyond
cross-entropy (TRADES, and the purifier's reconstruction term)."""

from collections.abc import Callable
from dataclasses import dataclass

import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader

from ..runs import autocast


class Transformed:
    """A loader whose input batches pass through ``transform(images, labels)`` on ``device``, in ``precision``;
    with ``keep_images``, the loss gets the inputs and the clean images after the labels."""

    def __init__(self, loader: DataLoader, transform, device, keep_images: bool = False,
                 precision: str = "fp32") -> None:
        self.loader, self.transform, self.device, self.keep_images = loader, transform, device, keep_images
        self.precision = precision

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        for images, labels in self.loader:
            images, labels = images.to(self.device), labels.to(self.device)
            with autocast(self.precision, self.device):
                inputs = self.transform(images, labels).float()
            yield (inputs, labels, inputs, images) if self.keep_images else (inputs, labels)


@dataclass
class Recipe:
    """What one training step feeds the classifier, and the validation metric that picks the epoch kept."""

    transform: Callable[[Tensor, Tensor], Tensor]
    validate: Callable[[], float]
    describe: dict
    loss: Callable[[Tensor, Tensor], Tensor] = F.cross_entropy


def trades_loss(beta: float) -> Callable[[Tensor, Tensor], Tensor]:
    """TRADES on logits of ``[clean; adversarial]``: CE(clean) + beta * KL(clean || adversarial)."""

    def loss(logits: Tensor, labels: Tensor) -> Tensor:
        clean, adv = logits.chunk(2)
        # log-probabilities on both sides: a probability that underflows to 0 would make the gradient
        # through the clean side log(0) * 0 = NaN
        kl = F.kl_div(F.log_softmax(adv, dim=1), F.log_softmax(clean, dim=1), reduction="batchmean", log_target=True)
        return F.cross_entropy(clean, labels) + beta * kl

    return loss


def with_reconstruction(loss: Callable[[Tensor, Tensor], Tensor], purifier: nn.Module, weight: float):
    """``loss`` plus ``weight`` times the purifier's MSE from the inputs to their clean images (a TRADES batch
    holds each clean image twice: clean, then adversarial)."""

    def total(logits: Tensor, labels: Tensor, inputs: Tensor, clean: Tensor) -> Tensor:
        target = clean.repeat(len(inputs) // len(clean), 1, 1, 1)
        return loss(logits, labels) + weight * F.mse_loss(purifier(inputs), target)

    return total
