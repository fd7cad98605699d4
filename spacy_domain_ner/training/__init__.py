"""Training helpers spaCy finds through entry points: adversarial training, the logger, the
optimizer, the mixing reader, the general NER head."""
