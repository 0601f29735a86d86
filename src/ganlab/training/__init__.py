"""Training: one runner, a step per GAN family, losses, regularizers, augmentation."""
