-- tests/bench/jobs_receipts.sql - a receipts backlog: 100 campaigns
-- (bench-0..bench-99, the slugs jobs_post.lua posts to) and :n succeeded
-- donations, each with its ready receipt job; payments and webhooks have no
-- jobs and stay live. For a database tally created, with tally stopped:
--   { echo '.parameter set :n 200000'; cat jobs_receipts.sql; } | sqlite3 DB
PRAGMA journal_mode = WAL;
PRAGMA synchronous = OFF;
BEGIN;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100)
INSERT INTO campaigns (id, slug, name, currency, goal_cents, created_at)
SELECT i, 'bench-' || (i - 1), 'Bench campaign ' || (i - 1), 'USD', 10000000, 1764288000000 FROM n;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :n)
INSERT INTO donations (id, campaign_id, amount_cents, currency, donor_name, donor_email,
	anonymous, hide_amount, message, payment_token, status, processor_ref, created_at)
SELECT i, 1 + i % 100, 500 + (i % 20) * 250, 'USD', 'Donor ' || (i % 100000),
	'donor' || (i % 200000) || '@example.org', 0, 0, '', 'tok_visa', 'succeeded',
	'mock_' || i, 1764288000000 + i FROM n;
INSERT INTO donors (campaign_id, email) SELECT DISTINCT campaign_id, donor_email FROM donations;
INSERT INTO jobs (id, queue, kind, donation_id, state, attempts, next_run_at, created_at, updated_at)
SELECT id, 'receipts', 'receipt', id, 'ready', 0, created_at, created_at, created_at FROM donations;
UPDATE campaigns SET
	raised_cents = (SELECT sum(amount_cents) FROM donations d WHERE d.campaign_id = campaigns.id),
	donation_count = (SELECT count(*) FROM donations d WHERE d.campaign_id = campaigns.id),
	donor_count = (SELECT count(*) FROM donors o WHERE o.campaign_id = campaigns.id),
	recent_ids = (SELECT group_concat(id, ',') FROM (SELECT id FROM donations d
		WHERE d.campaign_id = campaigns.id ORDER BY id DESC LIMIT 10)),
	seq = 1;
COMMIT;
PRAGMA wal_checkpoint(TRUNCATE);
