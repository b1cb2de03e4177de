"""Symptom matching: alert labels outrank words, rarer words count more, and every match says why."""

from __future__ import annotations

from runbook.catalog.matching import rank, stem
from runbook.catalog.models import LabelMatcher, Playbook, Symptom


def playbook(pid, title, summary, labels=(), keywords=()):
    return Playbook(id=pid, title=title, service="svc", severity="SEV2", escalation="e",
                    symptoms=(Symptom("s-" + pid, summary, keywords=keywords, labels=labels),))


VIDEO = playbook("video", "Video calls degraded", "Video freezes in calls",
                 labels=(LabelMatcher("alertname", ("VideoFreeze",)), LabelMatcher("region", regex="eu-.*")))
CALLS = playbook("calls", "Calls failing in one region", "Calls do not connect in a region",
                 labels=(LabelMatcher("alertname", ("CallSetupFailures",)),))
PUSH = playbook("push", "Push notifications delayed", "Pushes arrive late", keywords=("apns", "fcm"))


def test_stemming_meets_word_forms():
    assert stem("freezing") == stem("freezes") == "freez"


def test_text_ranks_the_most_specific_playbook_first():
    ranked = rank([VIDEO, CALLS, PUSH], "video freezing in one region")
    assert [m.playbook for m in ranked] == ["video", "calls"]
    assert ranked[0].symptom == "s-video"
    assert "'video', 'freezing' in symptom 's-video'" in ranked[0].reasons


def test_keywords_match():
    ranked = rank([VIDEO, CALLS, PUSH], "APNs backlog")
    assert ranked[0].playbook == "push"
    assert ranked[0].reasons == ["'apns' in symptom 's-push' keywords"]


def test_labels_outrank_text_and_regex_matches():
    ranked = rank([VIDEO, CALLS, PUSH], "calls", {"alertname": "VideoFreeze", "region": "eu-west"})
    assert ranked[0].playbook == "video"
    assert ranked[0].reasons[0] == "alert labels alertname=VideoFreeze, region=eu-west match symptom 's-video'"


def test_partial_labels_count_and_say_what_was_not_given():
    ranked = rank([VIDEO, CALLS], "", {"alertname": "VideoFreeze"})
    assert [m.playbook for m in ranked] == ["video"]
    assert ranked[0].reasons == ["alert labels alertname=VideoFreeze match symptom 's-video' (not given: region)"]


def test_a_contradicting_label_rules_a_symptom_out():
    assert rank([VIDEO], "", {"alertname": "VideoFreeze", "region": "us-east"}) == []


def test_nothing_matches_nothing():
    assert rank([VIDEO, CALLS, PUSH], "the and of") == []


def test_words_in_one_symptom_outrank_words_spread_over_several():
    together = playbook("together", "Media problems", "Video freezes and audio drops in calls")
    spread = Playbook(id="spread", title="Media problems", service="svc", severity="SEV2", escalation="e",
                      symptoms=(Symptom("s-video", "Video freezes in calls"),
                                Symptom("s-audio", "Audio drops in calls")))
    ranked = rank([spread, together, PUSH], "video freezes audio drops")
    assert [m.playbook for m in ranked[:2]] == ["together", "spread"]
    assert ranked[0].score > ranked[1].score


def test_negations_are_words():
    no_audio = playbook("no-audio", "No audio in calls", "Callers hear no audio at all")
    echo = playbook("echo", "Audio echo in calls", "Callers hear their own audio echoed")
    ranked = rank([echo, no_audio], "no audio")
    assert ranked[0].playbook == "no-audio"
    assert "'no', 'audio' in symptom 's-no-audio'" in ranked[0].reasons
    assert ranked[0].score > ranked[1].score
    assert rank([echo], "no") == []  # a negation is a word of its own, never dropped
