"""Generative models (and the small reference classifier) with config dataclasses."""

from .classifier import Classifier, ClassifierConfig
from .gan import ConditionalGAN, Discriminator, GANConfig, Generator
from .vae import ConditionalVAE, VAEConfig

__all__ = ["Classifier", "ClassifierConfig", "ConditionalGAN", "ConditionalVAE", "Discriminator",
           "GANConfig", "Generator", "VAEConfig"]
