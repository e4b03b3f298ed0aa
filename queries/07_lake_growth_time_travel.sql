-- Time travel: the lake grew one observing year per commit. Count the events each version
-- held (VERSION AS OF n reads exactly that snapshot of the Delta table).
SELECT 1 AS version, count(*) AS events FROM signal_events VERSION AS OF 1
UNION ALL SELECT 2, count(*) FROM signal_events VERSION AS OF 2
UNION ALL SELECT 3, count(*) FROM signal_events VERSION AS OF 3
UNION ALL SELECT 4, count(*) FROM signal_events VERSION AS OF 4
ORDER BY version;
