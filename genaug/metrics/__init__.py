"""Generative quality metrics (Classification Accuracy Score; more to come)."""

from .cas import (CASResult, accuracy, balanced_samples, classification_accuracy_score,
                  train_cas_classifier)

__all__ = ["CASResult", "accuracy", "balanced_samples", "classification_accuracy_score", "train_cas_classifier"]
