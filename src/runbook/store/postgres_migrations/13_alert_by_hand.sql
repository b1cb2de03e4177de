CREATE OR REPLACE FUNCTION runbook_claim_alert(p_fingerprint text, p_starts_at text, p_playbook text,
    p_incident text, p_owner text) RETURNS boolean
    LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
    BEGIN
        -- a responder opens an incident by hand for an alert no playbook took: the row may only go
        -- from unmatched, failed or resolved to pending, under an incident id nothing holds yet
        PERFORM pg_advisory_xact_lock(7304917, 2);
        IF EXISTS (SELECT 1 FROM incidents WHERE id = p_incident)
                OR EXISTS (SELECT 1 FROM alerts WHERE incident = p_incident) THEN
            RETURN false;
        END IF;
        UPDATE alerts SET outcome = 'pending', incident = p_incident, playbook = p_playbook, owner = p_owner,
                reason = NULL
            WHERE fingerprint = p_fingerprint AND starts_at = p_starts_at
              AND outcome IN ('unmatched', 'failed', 'resolved');
        RETURN FOUND;
    END $$
-- next statement
CREATE OR REPLACE FUNCTION runbook_settle_by_hand(p_fingerprint text, p_starts_at text, p_incident text,
    p_outcome text, p_reason text) RETURNS boolean
    LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
    BEGIN
        -- what the claim reserved is settled as the log says: "opened" once the incident's log links
        -- the alert, or back to what it was ("unmatched", "failed", "resolved") while no incident
        -- of that id was opened
        PERFORM pg_advisory_xact_lock(7304917, 2);
        IF p_outcome = 'opened' THEN
            IF NOT EXISTS (SELECT 1 FROM events WHERE incident = p_incident AND type = 'alert_received'
                           AND runbook_json(data) ->> 'fingerprint' = p_fingerprint
                           AND runbook_json(data) ->> 'starts_at' = p_starts_at) THEN
                RETURN false;
            END IF;
            UPDATE alerts SET outcome = 'opened', reason = p_reason, owner = NULL
                WHERE fingerprint = p_fingerprint AND starts_at = p_starts_at AND incident = p_incident
                  AND outcome = 'pending';
            RETURN FOUND;
        END IF;
        IF p_outcome NOT IN ('unmatched', 'failed', 'resolved')
                OR EXISTS (SELECT 1 FROM incidents WHERE id = p_incident) THEN
            RETURN false;
        END IF;
        UPDATE alerts SET outcome = p_outcome, reason = p_reason, owner = NULL, incident = NULL
            WHERE fingerprint = p_fingerprint AND starts_at = p_starts_at AND incident = p_incident
              AND outcome = 'pending';
        RETURN FOUND;
    END $$
-- next statement
REVOKE EXECUTE ON FUNCTION runbook_claim_alert, runbook_settle_by_hand FROM PUBLIC
