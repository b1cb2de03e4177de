"""The one renderer (catalog/templates.py): fields, escapes, argv that stays argv."""

from __future__ import annotations

import shlex

import pytest

from runbook.catalog.templates import (
    LENIENT,
    PLAIN,
    TemplateError,
    command_line,
    fields,
    go_template_misuse,
    render,
    render_argv,
)


def test_a_field_is_filled_anywhere_inside_a_text():
    assert render("pvc/{pvc} in {region}!", {"pvc": "data-0", "region": "eu-west-1"}) == "pvc/data-0 in eu-west-1!"
    assert render("{n} {b}", {"n": 3, "b": False}) == "3 false"


def test_doubled_braces_are_literal_braces():
    assert render("--template={{{{.metadata.name}}}}", {}) == "--template={{.metadata.name}}"
    assert render('up{{job="{job}"}}', {"job": "media"}) == 'up{job="media"}'
    assert render("{{name}}", {"name": "x"}) == "{name}"


@pytest.mark.parametrize("text, where", [("rate(x{code=\"500\"})", 6), ("a } b", 2), ("{ name }", 0), ("{", 0)])
def test_a_stray_brace_is_an_error_naming_the_fix(text, where):
    with pytest.raises(TemplateError, match=r"write '(\{\{|\}\})' for a literal") as caught:
        render(text, {"name": "x"})
    assert caught.value.offset == where


def test_an_unknown_name_is_refused_and_named():
    with pytest.raises(TemplateError, match=r"\{host\} has no value") as caught:
        render("drain {host}", {"region": "x"})
    assert caught.value.name == "host"
    with pytest.raises(TemplateError, match="must be text or a number"):
        render("{x}", {"x": ["a", "b"]})


@pytest.mark.parametrize("value", ["a b", "it's", '"quoted"', "x; rm -rf / $(touch y) `z` | w && v",
                                   "--flag=1 --other", "{region}", "{{", "}", "\\", "-"])
def test_a_hostile_value_stays_inside_its_one_argument(value):
    argv = render_argv(["echo", "--node={host}", "{host}", "tail"], {"host": value, "region": "NO"})
    assert argv == ("echo", f"--node={value}", value, "tail")  # never split, never rendered again
    assert shlex.split(command_line(argv)) == list(argv)  # what is shown is exactly what runs


def test_plain_mode_keeps_the_language_of_playbooks_without_parameters():
    assert render("awk '{print $1}' {file}", {"file": "a.log"}, PLAIN) == "awk '{print $1}' a.log"
    with pytest.raises(TemplateError, match=r"\{file\} has no value"):
        render("{file}", {}, PLAIN)
    assert [f.name for f in fields("x{status} {.a} {{b}}", PLAIN)] == ["status", "b"]


def test_lenient_mode_fills_what_it_knows_and_leaves_the_rest():
    assert render("{severity}: `gifts_orders_total{status}` {{x}} {", {"severity": "SEV2"}, LENIENT) == \
        "SEV2: `gifts_orders_total{status}` {{x}} {"


def test_an_unescaped_go_template_gets_the_fix():
    message = go_template_misuse("--template={{.metadata.name}}")
    assert "write '{{{{.metadata.name}}}}'" in message
    assert go_template_misuse("{{range .items}}{{end}}")
    assert go_template_misuse("--template={{{{.metadata.name}}}}") is None
    assert go_template_misuse("-o=jsonpath={{.metadata.name}}") is None  # jsonpath wants one brace
    assert go_template_misuse('{{"a": 1}}') is None
