"""Importing this module registers every function of the library: each module of the udfs
package other than the plumbing below registers its functions when imported."""

import importlib
import pkgutil

import udfs

PLUMBING = {"registry", "catalog", "duckdb", "spark"}

for module in sorted(m.name for m in pkgutil.iter_modules(udfs.__path__)):
    if module not in PLUMBING and not module.startswith("_"):
        importlib.import_module(f"udfs.{module}")
