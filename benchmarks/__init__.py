"""smda benchmarks: figures for speed and memory (run with `make bench`)."""
