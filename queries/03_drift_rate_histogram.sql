-- Histogram of drift rates in 1 Hz/s bins: the spike at 0 is terrestrial interference.
SELECT CAST(floor(drift_hz_s) AS INT) AS drift_bin_hz_s, count(*) AS hits
FROM signal_events
WHERE abs(drift_hz_s) < 5
GROUP BY CAST(floor(drift_hz_s) AS INT)
ORDER BY drift_bin_hz_s;
