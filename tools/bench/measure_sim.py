"""Throughput figures of the sim path for the throughput suite (placeholder: being built)."""
from __future__ import annotations

from tools.bench.model import BenchContext, Figure, Series


def measure(ctx: BenchContext) -> tuple[list[Figure], list[Series]]:
    return [], []
