"""Entity F1 and speed of int8 variants of a trained pipeline (docs/lab/speed.md).

usage: python benchmarks/int8_variants.py groups MODEL DEV.spacy
       python benchmarks/int8_variants.py variants MODEL_V1 MODEL_V2 DEV.spacy

groups:   int8 on every Linear layer, or on all but one group of layers (batch 16).
variants: float32 and int8 (default keep_float, or every layer) of a v1 and a v2 pipeline, batch 16 and 64.
"""
import sys
import warnings

import spacy
import torch

from spacy_domain_ner.evaluation.evaluate import evaluate_pipeline, load_gold
from spacy_domain_ner.models.quantize import quantize_transformers

warnings.filterwarnings("ignore")
GROUPS = {
    "float": lambda n: False,
    "all": lambda n: True,
    "no FFN output": lambda n: not (n.endswith("output.dense") and "attention" not in n),
    "no attention output": lambda n: not n.endswith("attention.output.dense"),
    "FFN only": lambda n: "intermediate" in n or (n.endswith("output.dense") and "attention" not in n),
    "not last layer": lambda n: "layer.5." not in n,
    "not first layer": lambda n: "layer.0." not in n,
}


def report(name, nlp, gold, batch_size):
    r = evaluate_pipeline(nlp, gold, batch_size=batch_size, progress=False)
    print(f"{name:30s} batch {batch_size:3d}  P {100 * r['ents_p']:.2f} R {100 * r['ents_r']:.2f} "
          f"F {100 * r['ents_f']:.2f}  {r['speed']['words_per_second']:.0f} w/s", flush=True)


def groups(model, dev):
    gold = load_gold(dev)
    for name, keep in GROUPS.items():
        nlp = spacy.load(model)
        shim = nlp.get_pipe("transformer").model.layers[0].shims[0]
        names = {n for n, m in shim._model.named_modules() if isinstance(m, torch.nn.Linear) and keep(n)}
        if names:
            shim._model = shim._hfmodel.transformer = torch.ao.quantization.quantize_dynamic(shim._model, names, dtype=torch.qint8)
        report(f"{name} ({len(names)} int8)", nlp, gold, 16)


def variants(model_v1, model_v2, dev):
    gold = load_gold(dev)
    for name, path, keep in (("v1 float", model_v1, "float"), ("v2 float", model_v2, "float"),
                             ("v2 int8 keep FFN out", model_v2, None), ("v2 int8 all", model_v2, ()),
                             ("v1 int8 keep FFN out", model_v1, None)):
        nlp = spacy.load(path)
        if keep != "float":
            quantize_transformers(nlp, keep_float=keep)
        for batch_size in (16, 64):
            report(name, nlp, gold, batch_size)


if __name__ == "__main__":
    {"groups": groups, "variants": variants}[sys.argv[1]](*sys.argv[2:])
