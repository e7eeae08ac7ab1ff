"""Stage 1: read a model, check it, fold it, quantize it; the TFLite Micro oracle."""
