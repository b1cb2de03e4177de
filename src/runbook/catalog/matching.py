"""Rank playbooks for what a responder sees: free text ("video freezing in one region") and/or alert labels.

Alert labels are exact evidence and outrank any text match; text is scored per word with
inverse document frequency, so words that single out a playbook count more than words every
playbook uses. Every match carries its reasons.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from runbook.catalog import preview
from runbook.catalog.models import LabelMatcher, Playbook

LABEL_SCORE = 10.0
_WORD = re.compile(r"[a-z0-9]+")
_STOP = frozenset(
    "a an and are as at be but by for from has have in into is it its of on or our the their there "
    "this to was were when where which while with one all any some than too very can "
    "i we you they them my me us".split()
)
# Negations are not stopwords: "no audio" is another fault than "audio". "cannot" stays a word too.
# Field weights: a word in a symptom is stronger evidence than the same word in the description.
_WEIGHTS = {"symptom": 3.0, "keyword": 3.0, "title": 2.0, "tag": 2.0, "service": 1.5, "description": 1.0}
# A symptom that holds several of the query's words together is stronger evidence than the same words
# spread over several symptoms: each further word landing in the best symptom adds this share of a word.
_TOGETHER = 0.5


def stem(word: str) -> str:
    """A deliberately crude stemmer: enough that 'freezing', 'freezes' and 'frozen' meet 'freeze'."""
    for suffix in ("ing", "ed", "es", "en", "s", "e", "y"):
        if len(word) > len(suffix) + 2 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def words(text: str) -> list[tuple[str, str]]:
    """(original word, stem) pairs of the meaningful words in `text`."""
    return [(w, stem(w)) for w in _WORD.findall(text.lower()) if w not in _STOP]


@dataclass
class Match:
    playbook: str
    title: str  # as it will read: filled by the one renderer (catalog/preview.py)
    score: float
    symptom: str | None = None
    reasons: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"playbook": self.playbook, "title": self.title, "score": round(self.score, 3),
                "symptom": self.symptom, "reasons": self.reasons}


def _accepts(matcher: LabelMatcher, value: str) -> bool:
    if matcher.regex is not None:
        try:
            return re.fullmatch(matcher.regex, value) is not None
        except re.error:
            return False
    return value in matcher.equals


def label_fit(matchers: tuple[LabelMatcher, ...], labels: dict[str, str]) -> tuple[list[str], list[str]] | None:
    """(matched, missing) label names when no given label contradicts the symptom; None otherwise.

    An alert often carries only some of the labels a symptom lists; each matching label is
    evidence, a label with a different value rules the symptom out.
    """
    matched, missing = [], []
    for matcher in matchers:
        value = labels.get(matcher.name)
        if value is None:
            missing.append(matcher.name)
        elif _accepts(matcher, value):
            matched.append(matcher.name)
        else:
            return None
    return (matched, missing) if matched else None


def sibling_group(pb: Playbook, symptom_id: str | None) -> tuple[str, ...] | None:
    """The alert labels whose values make one group of alerts of a symptom (sibling alerts: the
    warning and the critical of one rule), or None when the playbook has no such symptom. The
    symptom's `group_by:`, else its matched labels and the parameters' labels; never the severity
    label, whose value is what tells siblings apart."""
    symptom = next((s for s in pb.symptoms if s.id == symptom_id), None)
    if symptom is None:
        return None
    if symptom.group_by is not None:
        return symptom.group_by
    severity = {"severity", pb.severity_from.label if pb.severity_from else "severity"}
    names = [m.name for m in symptom.labels] + [p.label for p in pb.parameters.values() if p.label]
    return tuple(name for name in dict.fromkeys(names) if name not in severity)


def _fields(pb: Playbook) -> list[tuple[str, str | None, str, str]]:
    """(field kind, symptom id, label for the reason, text) for every searchable text of a playbook."""
    out = [("title", None, "title", pb.title), ("service", None, "service", pb.service),
           ("description", None, "description", pb.description)]
    out += [("tag", None, "tags", tag) for tag in pb.tags]
    for symptom in pb.symptoms:
        out.append(("symptom", symptom.id, f"symptom '{symptom.id}'", f"{symptom.summary} {symptom.description}"))
        out += [("keyword", symptom.id, f"symptom '{symptom.id}' keywords", kw) for kw in symptom.keywords]
    return out


def rank(playbooks: list[Playbook], text: str = "", labels: dict[str, str] | None = None,
         limit: int | None = None) -> list[Match]:
    labels = labels or {}
    query = words(text)
    stems = {}
    for original, s in query:
        stems.setdefault(s, original)
    indexed = []
    frequency: dict[str, int] = {}
    for pb in playbooks:
        # labels alone (an alert) need no text index: skip tokenizing every playbook's texts
        fields = [(kind, sid, label, {s for _, s in words(t)}) for kind, sid, label, t in _fields(pb)] if stems else []
        present = set().union(*(f[3] for f in fields)) if fields else set()
        for s in stems:
            if s in present:
                frequency[s] = frequency.get(s, 0) + 1
        indexed.append((pb, fields))
    total = max(len(playbooks), 1)
    idf = {s: math.log(1 + total / frequency.get(s, total)) for s in stems}
    best_possible = (sum(idf.values()) * (1 + _TOGETHER) - _TOGETHER * max(idf.values(), default=0.0)) \
        * max(_WEIGHTS.values()) or 1.0

    matches = []
    for pb, fields in indexed:
        match = Match(pb.id, pb.title, 0.0)
        fits = [(len(fit[0]) / len(s.labels), s, fit) for s in pb.symptoms
                if labels and (fit := label_fit(s.labels, labels))]
        if fits:
            share, symptom, (matched, missing) = max(fits, key=lambda f: f[0])
            shown = ", ".join(f"{name}={labels[name]}" for name in matched)
            match.score += LABEL_SCORE * share
            match.symptom = symptom.id
            note = f" (not given: {', '.join(missing)})" if missing else ""
            match.reasons.append(f"alert labels {shown} match symptom '{symptom.id}'{note}")
        text_score, found = 0.0, {}
        held: dict[str, list[float]] = {}  # symptom id -> idf of each query word it holds (summary or keywords)
        for s, original in stems.items():
            best = None
            holders = set()
            for kind, sid, label, field_stems in fields:
                if s in field_stems:
                    if sid:
                        holders.add(sid)
                    if best is None or _WEIGHTS[kind] > _WEIGHTS[best[0]]:
                        best = (kind, sid, label)
            for sid in holders:
                held.setdefault(sid, []).append(idf[s])
            if best:
                text_score += idf[s] * _WEIGHTS[best[0]]
                found.setdefault(best[2], []).append(original)
        together = {sid: sum(w) - max(w) for sid, w in held.items()}  # every word but the strongest
        if together:
            text_score += _TOGETHER * _WEIGHTS["symptom"] * max(together.values())
        if text_score:
            match.score += text_score / best_possible
            for label, hits in found.items():
                match.reasons.append(f"{', '.join(repr(w) for w in hits)} in {label}")
            if match.symptom is None and held:
                match.symptom = max(held, key=lambda sid: (sum(held[sid]), len(held[sid])))
        if match.score > 0:
            match.title = preview.title(pb)
            matches.append(match)
    matches.sort(key=lambda m: (-m.score, m.playbook))
    return matches[:limit] if limit else matches
