CREATE OR REPLACE FUNCTION runbook_claim_alert(p_fingerprint text, p_starts_at text, p_playbook text,
    p_incident text, p_owner text) RETURNS boolean
    LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
    DECLARE
        given jsonb := CASE WHEN jsonb_typeof(runbook_json(p_owner)) = 'object' THEN runbook_json(p_owner) END;
        -- the owner recorded is a claim made by hand whatever the caller says: trusted for 60 s on
        -- the database's clock, never by a server's lease or a process it names (engine/owner.py)
        made jsonb := jsonb_build_object('by_hand', true, 'until',
            to_char((clock_timestamp() + interval '60 seconds') AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'));
    BEGIN
        -- a responder opens an incident by hand for an alert no playbook took: the row may only go
        -- from unmatched, failed or resolved to pending, under an incident id nothing holds yet
        PERFORM pg_advisory_xact_lock(7304917, 2);
        IF EXISTS (SELECT 1 FROM incidents WHERE id = p_incident)
                OR EXISTS (SELECT 1 FROM alerts WHERE incident = p_incident) THEN
            RETURN false;
        END IF;
        -- of the caller's owner only a plain host, pid, start and token are kept (said who it was),
        -- each as runbook's json.dumps writes it back, so that a take-over's match on the row holds
        IF jsonb_typeof(given -> 'host') = 'string' AND given ->> 'host' ~ '^[\x20-\x7e]{1,255}$'
                AND strpos(given ->> 'host', '"') = 0 AND strpos(given ->> 'host', '\') = 0 THEN
            made := made || jsonb_build_object('host', given ->> 'host');
        END IF;
        IF jsonb_typeof(given -> 'pid') = 'number' AND given ->> 'pid' ~ '^[0-9]{1,9}$' THEN
            made := made || jsonb_build_object('pid', (given ->> 'pid')::integer);
        END IF;
        IF jsonb_typeof(given -> 'start') = 'string' AND given ->> 'start' ~ '^[0-9]{1,20}$' THEN
            made := made || jsonb_build_object('start', given ->> 'start');
        END IF;
        IF jsonb_typeof(given -> 'token') = 'string' AND given ->> 'token' ~ '^[0-9a-f]{1,64}$' THEN
            made := made || jsonb_build_object('token', given ->> 'token');
        END IF;
        UPDATE alerts SET outcome = 'pending', incident = p_incident, playbook = p_playbook, owner = made::text,
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
        -- only a claim made by hand that still holds the row (not a server's own, nor one a server
        -- took over) is settled, as the log says: "opened" once the incident's log links the alert,
        -- or back to what it was ("unmatched", "failed", "resolved") while no incident of that id
        -- was opened
        PERFORM pg_advisory_xact_lock(7304917, 2);
        IF p_outcome = 'opened' THEN
            IF NOT EXISTS (SELECT 1 FROM events WHERE incident = p_incident AND type = 'alert_received'
                           AND runbook_json(data) ->> 'fingerprint' = p_fingerprint
                           AND runbook_json(data) ->> 'starts_at' = p_starts_at) THEN
                RETURN false;
            END IF;
            UPDATE alerts SET outcome = 'opened', reason = p_reason, owner = NULL
                WHERE fingerprint = p_fingerprint AND starts_at = p_starts_at AND incident = p_incident
                  AND outcome = 'pending' AND runbook_json(owner) -> 'by_hand' = 'true'::jsonb;
            RETURN FOUND;
        END IF;
        IF p_outcome NOT IN ('unmatched', 'failed', 'resolved')
                OR EXISTS (SELECT 1 FROM incidents WHERE id = p_incident) THEN
            RETURN false;
        END IF;
        UPDATE alerts SET outcome = p_outcome, reason = p_reason, owner = NULL, incident = NULL
            WHERE fingerprint = p_fingerprint AND starts_at = p_starts_at AND incident = p_incident
              AND outcome = 'pending' AND runbook_json(owner) -> 'by_hand' = 'true'::jsonb;
        RETURN FOUND;
    END $$
