"""Show a pretrained encoder filling in blanks with plain transformers: python scripts/fill_mask.py MODEL_DIR [TEXT ...]"""

import sys

from transformers import pipeline

model = sys.argv[1] if len(sys.argv) > 1 else "runs/quickstart/encoder"
fill = pipeline("fill-mask", model=model)  # no nlp_ssl import: the saved model is a standard HF artifact
for text in sys.argv[2:] or [f"the capital of france is {fill.tokenizer.mask_token}.",
                             f"he was born in the {fill.tokenizer.mask_token} century."]:
    guesses = ", ".join(f"{g['token_str']} ({g['score']:.2f})" for g in fill(text, top_k=5))
    print(f"{text}\n  -> {guesses}")
