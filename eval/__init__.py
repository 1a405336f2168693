"""Evaluation of StarGAN models: judge classifiers, metrics, parameter counts, reports and plots.

This package imports ``stargan_core``; ``stargan_core`` never imports it.
"""
