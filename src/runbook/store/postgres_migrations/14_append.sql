CREATE OR REPLACE FUNCTION runbook_append(p_expected integer, p_prev text, p_events json,
    p_incident text, p_last_seq integer, p_updated_at text, p_last_mac text, p_acknowledged_at text, p_mitigated_at text, p_resolved_at text, p_status text, p_status_rank integer, p_severity text)
    RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
    -- Where the log ends (event p_expected, hash p_prev) is checked once, as the events go in: the
    -- event trigger refuses an event that does not chain to the one before it, which must exist, and
    -- the key (incident, seq) a second event after it; a refusal undoes the summary's update.
    -- p_prev is not read: the signature stays that of the EXECUTE roles were granted.
    BEGIN
        -- a status comes with the event that sets it; behind a plain IF, which PL/pgSQL evaluates
        -- without the executor, as most appends set no status
        IF p_status_rank > 0 THEN
            IF NOT EXISTS (SELECT 1 FROM json_to_recordset(p_events) AS e(type text)
                           WHERE e.type = CASE p_status WHEN 'follow-up' THEN 'resolved' ELSE p_status END) THEN
                RAISE EXCEPTION 'runbook_append refused: status % without the event that sets it', p_status
                    USING ERRCODE = 'check_violation';
            END IF;
        END IF;
        -- the summary first: its row lock queues the appenders of one incident, so the insert reads
        -- the log as the one before committed it
        UPDATE incidents SET last_seq = p_last_seq, updated_at = p_updated_at, last_mac = p_last_mac, acknowledged_at = COALESCE(acknowledged_at, p_acknowledged_at), mitigated_at = COALESCE(mitigated_at, p_mitigated_at), resolved_at = COALESCE(resolved_at, p_resolved_at), status = CASE WHEN (CASE status WHEN 'open' THEN 0 WHEN 'acknowledged' THEN 1 WHEN 'mitigated' THEN 2 WHEN 'resolved' THEN 3 WHEN 'follow-up' THEN 3 WHEN 'closed' THEN 4 END) < p_status_rank THEN p_status ELSE status END, severity = COALESCE(p_severity, severity) WHERE id = p_incident;
        -- held to commit: positions become visible in the order they were handed out
        PERFORM pg_advisory_xact_lock(7304917, 1);
        INSERT INTO events (incident, seq, ts, actor, type, data, prev_hash, hash, mac, request)
            SELECT p_incident, e.seq, e.ts, e.actor, e.type, e.data, e.prev_hash, e.hash, e.mac, e.request
            FROM json_to_recordset(p_events) AS e(seq integer, ts text, actor text, type text, data text,
                                                  prev_hash text, hash text, mac text, request text);
        PERFORM pg_notify('runbook_events', p_incident || ' ' || p_last_seq);
    END $$
