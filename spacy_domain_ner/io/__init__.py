"""Helpers shared by every reader and writer: the JSONL reader, located errors, atomic output."""
