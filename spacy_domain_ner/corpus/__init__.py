"""Corpus conversion to DocBin: the readers (formats/), label maps, documents to Docs, splits and stats."""
