-- The strongest drifting (non-terrestrial-looking) hit per target, strongest first.
-- Zero-drift hits are mostly interference: a transmitter on Earth does not drift with the sky.
SELECT target, site, round(freq_hz / 1e6, 6) AS freq_mhz, drift_hz_s, snr, observed_at
FROM (
  SELECT *, row_number() OVER (PARTITION BY target ORDER BY snr DESC, event_id) AS rank
  FROM signal_events
  WHERE abs(drift_hz_s) > 0.01
) AS ranked
WHERE rank = 1
ORDER BY snr DESC, target
LIMIT 10;
