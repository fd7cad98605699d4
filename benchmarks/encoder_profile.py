"""Where inference time goes, and what the encoder is fed (docs/lab/speed.md).

usage: py-spy record -r 50 -f raw -o prof.txt -- python benchmarks/encoder_profile.py MODEL DEV.spacy time
       python benchmarks/encoder_profile.py MODEL DEV.spacy count

time:  runs nlp.pipe over the first 80 dev texts (batch 16), for a sampling profiler to attribute.
count: word pieces of the dev texts, of the strided spans the transformer sees, and of those
       spans padded per batch of 16 docs, as spacy-transformers pads them.
"""
import sys
import time

import spacy
from spacy.tokens import DocBin


def main(model: str, dev: str, mode: str) -> None:
    nlp = spacy.load(model)
    texts = [d.text for d in DocBin().from_disk(dev).get_docs(nlp.vocab)]
    if mode == "time":
        list(nlp.pipe(texts[:4]))
        start = time.time()
        n = sum(len(d) for d in nlp.pipe(texts[:80], batch_size=16))
        print(f"{n / (time.time() - start):.0f} words/s")
        return
    trf = nlp.get_pipe("transformer")
    get_spans, tokenizer = trf.model.attrs["get_spans"], trf.model.tokenizer
    docs = [nlp.make_doc(t) for t in texts]
    unique = sum(len(tokenizer(d.text, add_special_tokens=False)["input_ids"]) for d in docs)
    real = padded = 0
    for i in range(0, len(docs), 16):
        lengths = [len(tokenizer(s.text)["input_ids"]) for spans in get_spans(docs[i:i + 16]) for s in spans]
        real += sum(lengths)
        padded += max(lengths) * len(lengths)
    print(f"spaCy tokens {sum(len(d) for d in docs)}, word pieces {unique}, in spans {real}, padded {padded}")
    print(f"stride overhead {real / unique:.2f}, padding overhead {padded / real:.2f}")


if __name__ == "__main__":
    main(*sys.argv[1:4])
