-- Drifting narrow-band hits in the "water hole" (1420-1720 MHz, between the H and OH lines)
-- strong enough to follow up.
SELECT target, site, round(freq_hz / 1e6, 6) AS freq_mhz, drift_hz_s, snr, observed_at
FROM signal_events
WHERE freq_hz BETWEEN 1420e6 AND 1720e6
  AND abs(drift_hz_s) > 0.05
  AND snr > 80
ORDER BY snr DESC, event_id;
