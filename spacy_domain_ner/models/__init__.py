"""Model architectures and their load-time behaviour: the offline-loadable transformer, bucketing,
int8, case features, the legal tokenizer."""
