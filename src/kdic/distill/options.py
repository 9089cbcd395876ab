"""Distillation defaults the command line shows before anything imports torch."""

DEFAULT_WIDTH_SCALE = 0.65  # width factor of a derived student's plain stages: about half the MACs
