-- A giving day's worth of data for the start-up benchmark: 10,000 campaigns
-- and 5,000,000 succeeded donations, with the stored aggregates filled in
-- from the rows (as the writer keeps them), recent_ids included.
PRAGMA journal_mode = WAL;
PRAGMA synchronous = OFF;
BEGIN;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10000)
INSERT INTO campaigns (id, slug, name, currency, goal_cents, created_at)
SELECT i, 'big-' || i, 'Campaign number ' || i, 'USD', 1000000, 1764288000000 FROM n;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5000000)
INSERT INTO donations (id, campaign_id, amount_cents, currency, donor_name, donor_email,
                       anonymous, hide_amount, message, payment_token, status, created_at)
SELECT i, 1 + (i * 7919) % 10000, 500 + (i % 20) * 250, 'USD', 'Donor ' || (i % 100000),
       'donor' || (i % 200000) || '@example.org', i % 9 = 0, 0, '', 'tok_visa', 'succeeded',
       1764288000000 + i
FROM n;
INSERT OR IGNORE INTO donors (campaign_id, email)
SELECT campaign_id, lower(donor_email) FROM donations;
CREATE INDEX gen_by_campaign ON donations(campaign_id, id);
UPDATE campaigns SET
  raised_cents = (SELECT coalesce(sum(amount_cents), 0) FROM donations d WHERE d.campaign_id = campaigns.id),
  donation_count = (SELECT count(*) FROM donations d WHERE d.campaign_id = campaigns.id),
  donor_count = (SELECT count(*) FROM donors r WHERE r.campaign_id = campaigns.id),
  recent_ids = coalesce((SELECT group_concat(id, ',') FROM (SELECT id FROM donations d
    WHERE d.campaign_id = campaigns.id ORDER BY id DESC LIMIT 10)), ''),
  seq = 1;
DROP INDEX gen_by_campaign;
COMMIT;
PRAGMA wal_checkpoint(TRUNCATE);
