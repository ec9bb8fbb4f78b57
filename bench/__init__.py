"""`python -m bench`: benchmarks side by side with their baselines (issue 7); not part of `make test`."""
