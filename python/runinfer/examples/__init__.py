"""Runnable examples of the runinfer binding (python -m runinfer.examples.NAME)."""
