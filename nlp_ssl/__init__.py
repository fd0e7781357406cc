"""nlp-ssl: self-supervised pretraining of NLP encoders, from raw text to fine-tuned task models."""

__version__ = "0.1.0"
