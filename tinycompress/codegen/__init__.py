"""Stages 4-5: plan the arena and emit the C project."""
