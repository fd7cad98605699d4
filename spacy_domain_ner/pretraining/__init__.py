"""Domain representations from raw text: masked-LM pretraining of the transformer and floret static vectors."""
