"""Readers for the corpus formats that `convert` turns into DocBin files."""
