"""The semi-supervised GAN's discriminator (Salimans et al., 2016): a K + 1-way classifier.

D(x) gives K + 1 logits, [classes..., fake], over any registered model's discriminator
features. Its adversarial score is how sure it is that x is real, as a logit:

    log sum_k<K exp(l_k) - l_fake     (sigmoid of it = 1 - p(fake | x))

so the GAN losses (bce on that score) are exactly the paper's unsupervised loss, and a few
labeled images add a cross-entropy over the K class logits. What the semi-supervised GAN
produces is this classifier; the generator only has to make D learn the data's shape.
"""

from __future__ import annotations

import torch
from torch import nn


class SemiSupervisedDiscriminator(nn.Module):
    """K + 1 logits on a base D with `features_of`, `head` and `head_like`."""

    def __init__(self, base: nn.Module, n_classes: int):
        super().__init__()
        if n_classes < 2:
            raise ValueError(f"a semi-supervised D needs at least 2 classes, got {n_classes}")
        del base.head  # the adversarial score comes from the K + 1 logits instead
        self.base = base
        self.n_classes = n_classes
        self.logits = base.head_like(n_classes + 1)

    def features_of(self, x: torch.Tensor) -> torch.Tensor:
        """The base D's hidden features (what feature matching compares)."""
        return self.base.features_of(x)

    def all_logits(self, x: torch.Tensor) -> torch.Tensor:
        """N x (K + 1): the classes' logits, then the fake one's."""
        return self.logits(self.features_of(x)).view(x.shape[0], self.n_classes + 1)

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        """N x K class logits, given that x is real: what the classifier predicts."""
        return self.all_logits(x)[:, : self.n_classes]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The adversarial score: the logit of x being real, log sum exp(classes) - fake."""
        logits = self.all_logits(x)
        return logits[:, : self.n_classes].logsumexp(dim=1) - logits[:, self.n_classes]
