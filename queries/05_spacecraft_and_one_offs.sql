-- Exceptionally strong hits (SNR > 250): known spacecraft (Voyager 1's X-band carrier and
-- its sidebands) and one-off events that were never seen again.
SELECT target, site, round(freq_hz / 1e6, 6) AS freq_mhz, drift_hz_s, snr, observed_at
FROM signal_events
WHERE snr > 250
ORDER BY observed_at, freq_hz;
