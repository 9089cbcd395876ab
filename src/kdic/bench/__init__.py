"""Complexity (params, MACs), latency and throughput measurement."""

from .complexity import PAPER_INPUT, Complexity, count_complexity

__all__ = ["Complexity", "PAPER_INPUT", "count_complexity"]
