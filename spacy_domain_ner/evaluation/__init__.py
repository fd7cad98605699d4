"""Scoring pipelines and reporting: evaluation, robustness, confidence and calibration, the ablation report."""
