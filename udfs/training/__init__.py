"""Training of the shipped models (needs the dev dependency setigen; never imported at query time)."""
