"""Batch annotation of large collections, exactly once and resumable, locally or on Ray (`runner` is the entry)."""
