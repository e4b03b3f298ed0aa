-- Signals towards Proxima Centauri seen on more than one day within 1 kHz of each other
-- (the shape of the BLC1 candidate: narrow, slowly drifting, persistent for days).
SELECT round(freq_hz / 1e3) / 1e3 AS freq_mhz,
       count(DISTINCT to_date(observed_at)) AS days,
       min(observed_at) AS first_seen,
       max(observed_at) AS last_seen,
       max(snr) AS best_snr
FROM signal_events
WHERE target = 'Proxima Centauri' AND abs(drift_hz_s) BETWEEN 0.01 AND 0.1
GROUP BY round(freq_hz / 1e3)
HAVING count(DISTINCT to_date(observed_at)) >= 3
ORDER BY days DESC;
