"""The offline twin: a synthetic world with a known truth, served by loopback replicas of the providers."""
