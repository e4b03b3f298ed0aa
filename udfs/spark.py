"""Spark adapter: every library function as a vectorized Arrow UDF (pyspark.sql.functions.arrow_udf)."""

from __future__ import annotations

from udfs.registry import UdfSpec, evaluate


def register(spark, specs: list[UdfSpec]) -> None:
    import warnings

    from pyspark.sql.functions import ArrowUDFType, arrow_udf
    from pyspark.sql.pandas.types import from_arrow_type

    # The arity varies per function, so the UDF type is given rather than read from type hints.
    warnings.filterwarnings("ignore", message="It is preferred to specify type hints for arrow UDF")
    for spec in specs:
        def run(*columns, _spec=spec):
            return evaluate(_spec, list(columns))

        spark.udf.register(spec.name, arrow_udf(run, from_arrow_type(spec.returns), ArrowUDFType.SCALAR))
