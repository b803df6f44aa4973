"""Benchmarks: each ``bench_*.py`` module has ``main()`` that prints its figures."""
