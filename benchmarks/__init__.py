"""Benchmarks: one script per stage; each writes its own section of BENCHMARKS.md."""
