"""The function library: one numpy kernel per function, registered on each engine by an adapter."""
