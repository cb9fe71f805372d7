"""Load testing and benchmarking of the purification service: a Locust SLO harness and a side-by-side benchmark."""
