"""Training: one loop (loop.py) and one small module per objective."""
