"""Each job keeps the price it was quoted at enqueue and its estimated cost, so a campaign's
projected cost and the budget reservation at send time read one column (NULL: price unknown)."""

from yoyo import step

from smsapp.db.migrate import portable

__depends__ = {"0003_import_headers"}

steps = [
    step(
        portable(
            """
ALTER TABLE send_jobs ADD COLUMN unit_price BIGINT CHECK (unit_price >= 0);
ALTER TABLE send_jobs ADD COLUMN cost_estimate BIGINT CHECK (cost_estimate >= 0);
CREATE INDEX send_jobs_campaign_template ON send_jobs (campaign_id, template_id);
"""
        ),
        portable(
            """
DROP INDEX send_jobs_campaign_template;
ALTER TABLE send_jobs DROP COLUMN cost_estimate;
ALTER TABLE send_jobs DROP COLUMN unit_price;
"""
        ),
    )
]
