"""The incident's vocabulary: one frozen record per event type, registered once.

Each record declares its payload fields, and with them everything the rest of runbook needs to
know about that type: how it folds into the incident state (`fold`), its timeline line
(`describe`), how loudly the screen announces it (`loud`: "warning", "error" or None), the
style family of its timeline line (`tone`), and what the store's incident summary takes from it
(`project`). The engine appends records, never bare (type, dict) pairs, and a log is read back
into records, so a misspelt type or key fails loudly instead of being ignored.

To add an event type: write a `@record("type_name")` class in the module of its family below,
with its fields, `fold` and `describe` (plus `loud`, `tone` or `project` when they apply), import
it here, then append it from a command.
"""

from runbook.engine.events.alerts import AlertReceived, AlertStateChanged
from runbook.engine.events.automation import (
                                        ActionFinished,
                                        ActionStarted,
                                        BackgroundStarted,
                                        BackgroundStopped,
                                        shown_argv,
)
from runbook.engine.events.base import RECORDS, Event, EventFormatError, EventRecord, apply, decode, fold, record
from runbook.engine.events.chat import ChatPosted, ChatReceived
from runbook.engine.events.degradations import (
                                        DegradationApplied,
                                        DegradationFailed,
                                        DegradationRestored,
                                        DegradationStarted,
                                        FlagChanged,
                                        MitigationAwaited,
                                        StageChecked,
                                        StageSteered,
)
from runbook.engine.events.escalation import (
                                        DrillInject,
                                        Escalated,
                                        Notified,
                                        PagerReported,
                                        PagerUpdated,
                                        ReminderFired,
)
from runbook.engine.events.incident import (
                                        Acknowledged,
                                        ActionItemAdded,
                                        HandedOff,
                                        Mitigated,
                                        NoteAdded,
                                        Opened,
                                        PluginErrorRecorded,
                                        Resolved,
                                        SeverityChanged,
                                        TargetBreached,
)
from runbook.engine.events.learning import ActionItemClosed, ActionItemReminded, ReviewWritten
from runbook.engine.events.parameters import CAPTURE, CaptureMissed, ParametersSet
from runbook.engine.events.roles import Closed, RoleAssigned, RoleLeft, SignalGiven
from runbook.engine.events.safeguards import DrillGuardChecked, DrillStopped
from runbook.engine.events.steps import (
                                        ApprovalGranted,
                                        CheckPolled,
                                        DecisionMade,
                                        MessagePosted,
                                        PostDue,
                                        StepCompleted,
                                        StepFailed,
                                        StepRestarted,
                                        StepSkipped,
                                        StepStarted,
                                        TrackFinished,
                                        WaitDue,
)

__all__ = [
                                        "CAPTURE",
                                        "RECORDS",
                                        "Acknowledged",
                                        "ActionFinished",
                                        "ActionItemAdded",
                                        "ActionItemClosed",
                                        "ActionItemReminded",
                                        "ActionStarted",
                                        "AlertReceived",
                                        "AlertStateChanged",
                                        "ApprovalGranted",
                                        "BackgroundStarted",
                                        "BackgroundStopped",
                                        "CaptureMissed",
                                        "ChatPosted",
                                        "ChatReceived",
                                        "CheckPolled",
                                        "Closed",
                                        "DecisionMade",
                                        "DegradationApplied",
                                        "DegradationFailed",
                                        "DegradationRestored",
                                        "DegradationStarted",
                                        "DrillGuardChecked",
                                        "DrillInject",
                                        "DrillStopped",
                                        "Escalated",
                                        "Event",
                                        "EventFormatError",
                                        "EventRecord",
                                        "FlagChanged",
                                        "HandedOff",
                                        "MessagePosted",
                                        "Mitigated",
                                        "MitigationAwaited",
                                        "NoteAdded",
                                        "Notified",
                                        "Opened",
                                        "PagerReported",
                                        "PagerUpdated",
                                        "ParametersSet",
                                        "PluginErrorRecorded",
                                        "PostDue",
                                        "ReminderFired",
                                        "Resolved",
                                        "ReviewWritten",
                                        "RoleAssigned",
                                        "RoleLeft",
                                        "SeverityChanged",
                                        "SignalGiven",
                                        "StageChecked",
                                        "StageSteered",
                                        "StepCompleted",
                                        "StepFailed",
                                        "StepRestarted",
                                        "StepSkipped",
                                        "StepStarted",
                                        "TargetBreached",
                                        "TrackFinished",
                                        "WaitDue",
                                        "apply",
                                        "decode",
                                        "fold",
                                        "record",
                                        "shown_argv",
]
