"""Benchmarks behind ``cmc-lab bench`` and their statistics (nothing below imports this package)."""
