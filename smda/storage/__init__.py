"""What smda keeps: the raw cache and staged inputs, the state chain, the model registry, published products; atomic writes and locks."""
