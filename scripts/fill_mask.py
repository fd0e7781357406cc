"""Fill in masked words of held-out text with a pretrained encoder and with the same model untrained, side by side:
python scripts/fill_mask.py MODEL_DIR [--held-out FILE] [--scored 500] [--examples 6] [--output result.json]"""

import argparse
import json

from nlp_ssl.data.sources import DataSourceConfig, column, data_dir_from_env, load_source
from nlp_ssl.fill_mask import compare_fill_mask, format_comparison, sentences

p = argparse.ArgumentParser(description=__doc__)
p.add_argument("model")
p.add_argument("--held-out", default="sentiment/imdb/train.jsonl.gz", help="text never pretrained on (default: "
               "IMDB's labelled reviews; the quickstart pretrains on the unlabelled ones)")
p.add_argument("--scored", type=int, default=500)
p.add_argument("--examples", type=int, default=6)
p.add_argument("--output", default=None, help="also write the scores as JSON here")
a = p.parse_args()
docs = column(load_source(DataSourceConfig(path=a.held_out, max_examples=2000), data_dir_from_env(), ["text"]), "text")
result = compare_fill_mask(a.model, sentences(docs), a.scored, a.examples)
print(format_comparison(result))
if a.output:
    open(a.output, "w").write(json.dumps(result, indent=1) + "\n")
