"""Benchmarks comparing hewitt with "floor" actor implementations; see README.md.

Run ``python -m benchmarks --help`` from the repository root.
"""
