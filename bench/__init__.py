"""Benchmarks: Megamind against the bare engine and a bare aiohttp handler, side by side.

Run ``python -m bench.run [--quick] [--only NAME ...]`` (or ``scripts/bench``).
"""
