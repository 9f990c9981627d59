"""Benchmarks for the course's helpers (run them as modules: ``python -m benchmarks.bench_training``)."""
