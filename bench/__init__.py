"""`make bench`: the service's throughput and memory as a ratio to the bare Temporal SDK."""
