"""Redaction of an erased person's values from run-folder files (pure Python, no Spark)."""

from __future__ import annotations

import html
import json
import string
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jobs.erase import read_request_file
from jobs.redact import ERASED, Redactor, json_leaf_strings, redact_file, redact_tree
from config.errors import ConfigError

ALPHABET = string.ascii_letters + string.digits + string.punctuation + " éÉüÜñ\n"
# Long enough to be erased inside other text, with a letter so the digit-only rule (tested below) does not apply.
values = st.text(ALPHABET, min_size=5, max_size=12).filter(lambda v: v.strip() == v and any(c.isalpha() for c in v))
texts = st.text(ALPHABET, max_size=60)


def outside_marker(text: str) -> str:
    """``text`` with every ``[erased]`` cut out, so a value cannot be found inside the marker itself."""
    return text.replace(ERASED, "\x00").lower()


@settings(max_examples=300, deadline=None)
@given(st.lists(values, min_size=1, max_size=4), st.lists(texts, min_size=1, max_size=5))
def test_no_value_is_left_in_any_text(found, pieces):
    redactor = Redactor.of(found)
    text = "".join(piece + found[i % len(found)] for i, piece in enumerate(pieces))
    redacted = outside_marker(redactor.text(text))
    assert not [v for v in found if v.lower() in redacted]


@settings(max_examples=200, deadline=None)
@given(values, texts, texts)
def test_escaped_forms_are_redacted(value, before, after):
    redactor = Redactor.of([value])
    for form in (html.escape(value), json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1]):
        redacted = outside_marker(redactor.text(before + form + after))
        assert form.lower() not in redacted


@settings(max_examples=200, deadline=None)
@given(values, st.dictionaries(texts, texts, max_size=4), texts)
def test_json_keys_holding_a_value_go_and_strings_are_redacted(value, others, suffix):
    redactor = Redactor.of([value])
    document = {"term_frequencies": {"family_name": {value.lower(): 0.1, **others}}, "note": f"{value}{suffix}"}
    redacted = outside_marker(json.dumps(redactor.json_value(document), ensure_ascii=False))
    assert value.lower() not in redacted
    assert json.dumps(value.lower(), ensure_ascii=False)[1:-1].lower() not in redacted


def test_values_too_short_to_identify_anyone_are_ignored():
    redactor = Redactor.of(["Zebulonia", "GB", "12", "  "])
    assert redactor.values == frozenset({"Zebulonia"})
    assert redactor.text("GB: ZEBULONIA, zebulonia.q@example.org") == "GB: [erased], [erased].q@example.org"


def test_short_values_are_erased_only_where_they_stand_whole():
    redactor = Redactor.of(["Max", "Ann"])
    assert redactor.text("<td style='max-width: 3px'>Channel</td>") == "<td style='max-width: 3px'>Channel</td>"
    document = {"max": 0.5, "name": " MAX ", "css": "max-width", "items": ["ann", "annex"]}
    assert redactor.json_value(document) == {"name": "[erased]", "css": "max-width", "items": ["[erased]", "annex"]}
    assert not redactor.found_in_binary(b"\x00max\x01ann")


def test_numbers_are_redacted_only_where_no_digit_touches_them():
    redactor = Redactor.of(["7911123987", "+447911123987", "123"])
    text = "tel +447911123987, 7911 123987, 7911123987; id 79111239870, 447911123987"
    assert redactor.text(text) == "tel [erased], 7911 123987, [erased]; id 79111239870, 447911123987"
    assert "123" not in redactor.values  # too short to identify anyone


def test_a_longer_value_is_replaced_whole():
    redactor = Redactor.of(["zeb", "zeb.qxw@example.org"])
    assert redactor.text("mail ZEB.QXW@example.org") == "mail [erased]"


def test_an_empty_redactor_changes_nothing(tmp_path):
    redactor = Redactor.of([])
    assert not redactor
    (tmp_path / "a.html").write_text("Zebulonia")
    assert redact_tree(tmp_path, redactor).files_seen == 0
    assert redactor.text("Zebulonia") == "Zebulonia"


def write(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def test_a_run_folder_is_redacted_file_by_file(tmp_path):
    run = tmp_path / "_runs" / "run-1"
    model = {"model_type": "fs", "term_frequencies": {"family_name": {"quixotewright": 0.01, "smith": 0.2}}}
    write(run / "model.json", json.dumps(model))
    write(run / "summary.json", json.dumps({"example": "Zebulonia Quixotewright", "count": 3}, indent=2) + "\n")
    write(run / "report.html", "<td>O&#x27;Quixotewright</td><td>Smith</td>")
    write(run / "gx" / "logo.png", b"\x89PNG\x00\xff plain image")
    write(run / "gx" / "dump.bin", b"\xff\xfe QUIXOTEWRIGHT \x00")
    write(run / "broken.json", '{"name": "Quixotewright"')
    redactor = Redactor.of(["Quixotewright", "O'Quixotewright", "Zebulonia"])

    planned = redact_tree(tmp_path, redactor, dry_run=True)
    assert (run / "gx" / "dump.bin").exists() and "quixotewright" in (run / "model.json").read_text()
    counts = redact_tree(tmp_path, redactor)

    assert (counts.rewritten, counts.deleted) == (planned.rewritten, planned.deleted)
    assert counts.files_seen == 6
    assert sorted(Path(p).name for p in counts.rewritten) == [
        "broken.json",
        "model.json",
        "report.html",
        "summary.json",
    ]
    assert [Path(p).name for p in counts.deleted] == ["dump.bin"]
    assert json.loads((run / "model.json").read_text())["term_frequencies"] == {"family_name": {"smith": 0.2}}
    assert json.loads((run / "summary.json").read_text()) == {"example": "[erased] [erased]", "count": 3}
    assert (run / "summary.json").read_text().endswith("}\n")
    assert (run / "report.html").read_text() == "<td>[erased]</td><td>Smith</td>"
    assert (run / "broken.json").read_text() == '{"name": "[erased]"'
    assert (run / "gx" / "logo.png").read_bytes().startswith(b"\x89PNG")
    assert not list(tmp_path.rglob(".*.erasing"))
    assert redact_file(run / "model.json", redactor) == "unchanged"


def test_json_leaf_strings_reads_a_quarantined_row():
    row = json.dumps(
        {"name": "Zebulonia", "address": {"line1": "17 Marmaladewick Lane"}, "n": 7, "ok": True, "x": None}
    )
    assert json_leaf_strings(row) == {"Zebulonia", "17 Marmaladewick Lane", "7"}
    assert json_leaf_strings(row, exclude=["name", "address"]) == {"7"}
    assert json_leaf_strings("not json") == {"not json"}
    assert json_leaf_strings(None) == set()


def test_request_files_name_golden_ids_or_source_keys(tmp_path):
    ids = write(tmp_path / "ids.csv", "golden_id\nG1\n\nG2\n")
    keys = write(tmp_path / "keys.csv", "\ufeffsource_system,source_key\nwebshop,W-1\nbilling, 100 \n")
    assert read_request_file(ids) == (["G1", "G2"], [])
    assert read_request_file(keys) == ([], [("webshop", "W-1"), ("billing", "100")])
    with pytest.raises(ConfigError, match="header"):
        read_request_file(write(tmp_path / "bad.csv", "id\n1\n"))
    with pytest.raises(ConfigError, match="line 3"):
        read_request_file(write(tmp_path / "half.csv", "source_system,source_key\nwebshop,W-1\nbilling,\n"))
    with pytest.raises(ConfigError, match="missing.csv"):
        read_request_file(tmp_path / "missing.csv")
