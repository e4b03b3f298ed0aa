-- Frequencies (10 kHz bins) where zero-drift hits arrive from many different directions:
-- the fingerprint of interference (GPS, GLONASS, Iridium, radars), not of a sky source.
SELECT round(freq_hz / 1e4) * 1e4 / 1e6 AS freq_mhz,
       count(DISTINCT target) AS targets,
       count(*) AS hits
FROM signal_events
WHERE abs(drift_hz_s) < 0.02
GROUP BY round(freq_hz / 1e4)
HAVING count(DISTINCT target) >= 20
ORDER BY hits DESC, freq_mhz
LIMIT 10;
