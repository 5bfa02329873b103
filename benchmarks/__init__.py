"""Benchmarks: ``python -m benchmarks`` runs every ``benchmarks/<name>.py`` that has ``main()``.

Figures and how they were taken are kept in BENCHMARKS.md at the repository root.
"""
