"""Per-step time of the CNN config (configs/ner_cnn.cfg): plain vs FGM vs PGD (K=3).

usage: python benchmarks/adversarial_step_time.py TRAIN.spacy N_DOCS STEPS
"""
import itertools, sys, time
from pathlib import Path
import spacy
from spacy.tokens import DocBin
from spacy.training import Example
from spacy.training.loop import train_while_improving
from spacy.util import fix_random_seed, load_config, load_model_from_config
from spacy.training.batchers import minibatch_by_words
from thinc.api import Adam
from spacy_domain_ner.training.adversarial.settings import check_settings
from spacy_domain_ner.training.adversarial.update import install_adversarial_training, get_adversarial_state

TRAIN, N_DOCS, STEPS, WARM = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), 3
blank = spacy.blank("en")
docs = list(DocBin().from_disk(TRAIN).get_docs(blank.vocab))[:N_DOCS]
n_sents = sum(len(list(d.sents)) if d.has_annotation("SENT_START") else 10 for d in docs)
print(f"{len(docs)} docs, ~{n_sents} sentences, {sum(len(d) for d in docs)} tokens")

def run(variant):
    fix_random_seed(0)
    nlp = load_model_from_config(load_config(Path(__file__).parent.parent / "configs" / "ner_cnn.cfg", interpolate=True), auto_fill=True)
    examples = [Example(nlp.make_doc(d.text), d) for d in docs]
    nlp.initialize(lambda: examples)
    if variant != "plain":
        method, k = ("pgd", 3) if variant == "pgd" else ("fgm", 1)
        start = 10**6 if variant == "inactive" else 0
        install_adversarial_training(nlp, settings=check_settings(method=method, epsilon=1.0, alpha=0.4, steps=k, start_step=start, tables=None, enabled=True))
    batches = list(minibatch_by_words(examples, size=1000))
    data = ((0, b) for b in itertools.cycle(batches))
    times = []
    t = time.perf_counter()
    for _ in train_while_improving(nlp, Adam(0.001), data, lambda: (0.0, {}), dropout=0.1, eval_frequency=10**6,
                                   accumulate_gradient=1, patience=0, max_steps=WARM + STEPS, exclude=[],
                                   annotating_components=[], before_update=None):
        now = time.perf_counter(); times.append(now - t); t = now
    st = get_adversarial_state(nlp)
    return sum(times[WARM:]) / STEPS, len(batches), (st.n_adversarial if st else 0)

results = {}
for rnd in range(3):
    for v in ["plain", "inactive", "fgm", "pgd"]:
        sec, nb, nadv = run(v)
        results.setdefault(v, []).append(sec)
        print(f"round {rnd} {v}: {sec*1000:.0f} ms/step ({nb} batches of <=1000 words, {nadv} adversarial updates)", flush=True)
base = min(results["plain"])
for v, xs in results.items():
    print(f"{v}: best {min(xs)*1000:.0f} ms/step, x{min(xs)/base:.2f} of plain")
