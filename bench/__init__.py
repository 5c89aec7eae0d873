"""Benchmarks (print JSON); see bench_vp.py."""
