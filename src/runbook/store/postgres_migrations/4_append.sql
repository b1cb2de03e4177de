CREATE FUNCTION runbook_append(p_expected integer, p_prev text, p_events json,
    p_incident text, p_last_seq integer, p_updated_at text, p_last_mac text, p_acknowledged_at text, p_mitigated_at text, p_resolved_at text, p_status text, p_status_rank integer, p_severity text)
    RETURNS void LANGUAGE plpgsql AS $$
    DECLARE
        found_seq integer;
        found_hash text;
    BEGIN
        -- the summary first: its row lock queues the appenders of one incident, and the statements
        -- after it read the log as the one before committed it (a refusal undoes this update)
        UPDATE incidents SET last_seq = p_last_seq, updated_at = p_updated_at, last_mac = p_last_mac, acknowledged_at = COALESCE(acknowledged_at, p_acknowledged_at), mitigated_at = COALESCE(mitigated_at, p_mitigated_at), resolved_at = COALESCE(resolved_at, p_resolved_at), status = CASE WHEN (CASE status WHEN 'open' THEN 0 WHEN 'acknowledged' THEN 1 WHEN 'mitigated' THEN 2 WHEN 'resolved' THEN 3 WHEN 'follow-up' THEN 3 WHEN 'closed' THEN 4 END) < p_status_rank THEN p_status ELSE status END, severity = COALESCE(p_severity, severity) WHERE id = p_incident;
        SELECT seq, hash INTO found_seq, found_hash FROM events WHERE incident = p_incident
            ORDER BY seq DESC LIMIT 1;
        IF coalesce(found_seq, 0) <> p_expected OR (found_seq IS NOT NULL AND found_hash IS DISTINCT FROM p_prev) THEN
            RAISE EXCEPTION USING ERRCODE = 'serialization_failure', MESSAGE = 'runbook_append refused: the log '
                'of ' || p_incident || ' ends elsewhere', DETAIL = coalesce(found_seq, 0);
        END IF;
        -- held to commit: positions become visible in the order they were handed out
        PERFORM pg_advisory_xact_lock(7304917, 1);
        INSERT INTO events (incident, seq, ts, actor, type, data, prev_hash, hash, mac)
            SELECT p_incident, e.seq, e.ts, e.actor, e.type, e.data, e.prev_hash, e.hash, e.mac
            FROM json_to_recordset(p_events) AS e(seq integer, ts text, actor text, type text, data text,
                                                  prev_hash text, hash text, mac text);
        PERFORM pg_notify('runbook_events', p_incident || ' ' || p_last_seq);
    END $$
