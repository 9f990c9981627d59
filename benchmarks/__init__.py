"""Benchmarks: each compares the course code with a baseline measured in the same run."""
