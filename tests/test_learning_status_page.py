"""The internal status page lists open action items and, on an incident, the past incidents like
it (with the repeat warning) and its own action items; hostile text stays text."""

from __future__ import annotations

from test_status_page import HOSTILE, VIEW, Tags, client_for, engine  # noqa: F401  (the engine fixture)


def test_the_status_page_shows_seen_before_and_action_items(engine):  # noqa: F811
    old = engine.open("video-call-degraded", "ana", params={"region": "eu-west-1"}).id
    engine.mitigate(old, "bo")
    engine.resolve(old, "ana")
    engine.add_action_item(old, "ana", f"alert on SFU CPU {HOSTILE}", owner="bo", due="2000-01-01")
    engine.clock.advance(days=41)
    new = engine.open("video-call-degraded", "cy", params={"region": "eu-west-1"}).id
    with client_for(engine) as client:
        assert client.get(f"/?token={VIEW}").status_code == 303
        home = client.get("/").text
        page = client.get(f"/incidents/{new}").text
    assert "<script>window.__pwned" not in home + page
    text = Tags.text_of(home)
    assert "Open action items (1)" in text and f"{old}#1 alert on SFU CPU" in text and "overdue" in text
    text = Tags.text_of(page)
    assert "Seen this before" in text and "repeat: action 'alert on SFU CPU" in text
    assert f"from {old} open 41 days" in text
    assert "Mitigated: a responder" in text and "(bo, after" in text
    assert f'href="/incidents/{old}"' in page
