"""`spacy_domain_ner.adversarial_training.v1`: FGM/PGD on the embedding tables (the wrapper is in `update`)."""
