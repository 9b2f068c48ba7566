"""Shared HTTP plumbing for every area's routes: the JSON error shape and the dependency that
hands a route its `Runtime`."""
