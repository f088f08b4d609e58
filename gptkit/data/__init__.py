"""Data: text and JSONL to token batches, chat and preference datasets, and the built-in toy world."""
