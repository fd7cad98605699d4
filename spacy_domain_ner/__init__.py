"""spaCy plugin for legal-domain NER: converters, architectures, callbacks and evaluation.

Importing the package registers nothing by side effect: spaCy finds every
registered function through the entry points declared in setup.cfg.
"""

__version__ = "0.1.0"
