-- tests/bench/jobs_drain.sql - :n pending donations over 100 campaigns
-- (d-1..d-100), each with its ready capture job in the payments queue; the
-- receipts and webhooks queues are paused so only payments run. For a
-- database tally created (schema in place), with tally stopped:
--   { echo '.parameter set :n 1000000'; cat jobs_drain.sql; } | sqlite3 DB
PRAGMA journal_mode = WAL;
PRAGMA synchronous = OFF;
BEGIN;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100)
INSERT INTO campaigns (id, slug, name, currency, goal_cents, created_at)
SELECT i, 'd-' || i, 'Drain campaign ' || i, 'USD', 1000000, 1764288000000 FROM n;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :n)
INSERT INTO donations (id, campaign_id, amount_cents, currency, donor_name, donor_email,
	anonymous, hide_amount, message, payment_token, status, created_at)
SELECT i, 1 + i % 100, 500 + (i % 20) * 250, 'USD', 'Donor ' || (i % 100000),
	'donor' || (i % 200000) || '@example.org', 0, 0, '', 'tok_visa', 'pending', 1764288000000 + i FROM n;
INSERT INTO jobs (id, queue, kind, donation_id, state, attempts, next_run_at, created_at, updated_at)
SELECT id, 'payments', 'capture', id, 'ready', 0, created_at, created_at, created_at FROM donations;
UPDATE campaigns SET pending_cents = (SELECT sum(amount_cents) FROM donations d WHERE d.campaign_id = campaigns.id), seq = 1;
UPDATE queues SET paused = 1 WHERE name IN ('receipts', 'webhooks');
COMMIT;
PRAGMA wal_checkpoint(TRUNCATE);
