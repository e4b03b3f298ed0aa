"""Table definitions (schemas.py) and lake access (lake.py): the Delta tables astrolake queries."""
