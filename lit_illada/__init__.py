from lit_illada.api import load as load  # the one-call loader: lit_illada.load(path) -> ids-to-logits module
