CREATE OR REPLACE FUNCTION runbook_event_checked() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        before_hash text;
    BEGIN
        IF NEW.type IS NULL OR NEW.type NOT IN ('acknowledged', 'action_finished', 'action_item_added', 'action_item_closed', 'action_item_reminded', 'action_started', 'alert_received', 'alert_state_changed', 'approval_granted', 'background_started', 'background_stopped', 'capture_missed', 'chat_posted', 'chat_received', 'check_polled', 'closed', 'decision_made', 'degradation_applied', 'degradation_failed', 'degradation_restored', 'degradation_started', 'drill_guard_checked', 'drill_inject', 'drill_stopped', 'escalated', 'flag_changed', 'handed_off', 'message_posted', 'mitigated', 'mitigation_awaited', 'note_added', 'notified', 'opened', 'pager_reported', 'pager_updated', 'parameters_set', 'plugin_error', 'post_due', 'reminder_fired', 'resolved', 'review_written', 'role_assigned', 'role_left', 'severity_changed', 'signal_given', 'stage_checked', 'stage_steered', 'step_completed', 'step_failed', 'step_restarted', 'step_skipped', 'step_started', 'target_breached', 'track_finished', 'wait_due') THEN
            RAISE EXCEPTION 'runbook refused event % of %: unknown event type %', NEW.seq, NEW.incident, NEW.type
                USING ERRCODE = 'check_violation';
        END IF;
        IF NEW.seq = 1 THEN
            before_hash := '0000000000000000000000000000000000000000000000000000000000000000';
        ELSE
            SELECT hash INTO before_hash FROM events WHERE incident = NEW.incident AND seq = NEW.seq - 1;
        END IF;
        IF before_hash IS NULL OR NEW.prev_hash IS DISTINCT FROM before_hash OR NEW.hash !~ '^[0-9a-f]{64}$' THEN
            RAISE EXCEPTION 'runbook refused event % of %: its hash does not chain to event %', NEW.seq,
                NEW.incident, NEW.seq - 1 USING ERRCODE = 'check_violation';
        END IF;
        RETURN NEW;
    END $$
