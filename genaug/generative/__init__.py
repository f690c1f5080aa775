"""Generative models (conditional VAE and GAN), the reference classifier, training, checkpoints and augmenters.

Example:
    >>> import torch
    >>> from genaug.generative import load_model, slerp
    >>> gan = load_model("mnist-cgan")
    >>> images = gan.sample(16, labels=7, generator=torch.Generator().manual_seed(0))  # (16, 1, 28, 28) in [0, 1]
"""

from .augment import GenerativeSample, LatentInterpolate, LatentNoise
from .checkpoint import (SHIPPED, CheckpointError, checkpoint_info, load_model, read_checkpoint,
                         save_checkpoint)
from .latent import interpolate, lerp, slerp
from .models import (Classifier, ClassifierConfig, ConditionalGAN, ConditionalVAE, GANConfig,
                     VAEConfig)
from .train import TrainConfig, TrainResult, train

__all__ = ["SHIPPED", "CheckpointError", "Classifier", "ClassifierConfig", "ConditionalGAN", "ConditionalVAE",
           "GANConfig", "GenerativeSample", "LatentInterpolate", "LatentNoise", "TrainConfig", "TrainResult",
           "VAEConfig", "checkpoint_info", "interpolate", "lerp", "load_model", "read_checkpoint", "save_checkpoint",
           "slerp", "train"]
