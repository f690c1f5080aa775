"""Generative quality metrics: FID / KID, precision and recall, CAS and GAN-test, PSNR / SSIM,
diversity and coverage, and one report that puts them side by side with the real-data floor.

Every metric takes images as a tensor ``(N, C, H, W)`` (uint8 or float in [0, 1], any device), a
pair ``(images, labels)`` or a Dataset; the feature-space metrics also take a :class:`FeatureSet`
from :func:`extract_features`, so features are computed once. Nothing is downloaded: the default
feature extractor for 1x28x28 images is the shipped ``mnist-classifier``. See docs/METRICS.md.

Example:
    >>> import torch
    >>> from genaug.data import load_builtin
    >>> from genaug.metrics import extract_features, fid, precision_recall
    >>> test = load_builtin("mnist5k", "test")
    >>> real, other = extract_features(test.images[::2]), extract_features(test.images[1::2])
    >>> fid(real, real) < 1e-6
    True
    >>> precision_recall(real, other).recall > 0.6
    True
"""

from .cas import (CASResult, accuracy, balanced_samples, classification_accuracy_score,
                  train_cas_classifier)
from .classifier_accuracy import GANTestResult, gan_test
from .distribution import KIDResult, fid, frechet_distance, kernel_distance, kid
from .features import FeatureSet, InceptionFeatures, extract_features
from .image_quality import psnr, reconstruction_quality, ssim
from .knn_manifold import PrecisionRecall, precision_recall, precision_recall_features
from .report import GeneratorReport, evaluate_generator, evaluate_samples, write_report
from .variety import DiversityResult, coverage_features, diversity, mean_pairwise_distance

__all__ = ["CASResult", "DiversityResult", "FeatureSet", "GANTestResult", "GeneratorReport", "InceptionFeatures",
           "KIDResult", "PrecisionRecall", "accuracy", "balanced_samples", "classification_accuracy_score",
           "coverage_features", "diversity", "evaluate_generator", "evaluate_samples", "extract_features", "fid",
           "frechet_distance", "gan_test", "kernel_distance", "kid", "mean_pairwise_distance", "precision_recall",
           "precision_recall_features", "psnr", "reconstruction_quality", "ssim", "train_cas_classifier",
           "write_report"]
