"""Stage 2: the compression methods, one module each."""
