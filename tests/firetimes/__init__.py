"""Tests of the fire-time maths, the quiet-window report and its command."""
