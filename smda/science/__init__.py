"""The science core: triple collocation, labels, features, the model and its bundle, nudging, the gain, the cycle, metrics (pure)."""
