"""Local infrastructure: the Kafka broker from the official jars, and the process runner for `make run`."""
