"""The lake: portal interactions and cases as Delta tables for Customer Insights – Data, Fabric and Spark.

`target` reads LAKE_URL (no delta-rs: the settings check loads it); `rows` builds the rows (pure);
`tables` is the only code that touches delta-rs; `export` is the job the timer, the erasure route,
the retention timer and `python -m dci lake` run. Nothing here is imported while LAKE_URL is unset.
"""
