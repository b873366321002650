"""Benchmarks: inference runtimes, the streaming pipeline, cost, and the naive baseline.

A wiring package like ``secdistill/cli.py``: it may import the fleet (``secdistill.workers``) and,
lazily inside functions, torch, transformers and ``secdistill.distill``.
"""
