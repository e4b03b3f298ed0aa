-- How many hits each observatory recorded each year, and how many targets it looked at.
SELECT site, year(observed_at) AS year, count(*) AS hits, count(DISTINCT target) AS targets
FROM signal_events
GROUP BY site, year(observed_at)
ORDER BY site, year;
