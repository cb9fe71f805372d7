"""The side-by-side benchmark: this service (batching on and off), naive FastAPI and LitServe, on the same models."""
