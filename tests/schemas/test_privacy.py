"""Masking of national ids: one pure function behind every page, API answer and printed report."""

from __future__ import annotations

import pytest

from schemas.privacy import mask_key_value, mask_national_id, mask_record, mask_value, reads_masked


@pytest.mark.parametrize(
    "value, shown",
    [
        ("123456789", "•••••6789"),
        ("AB123456C", "•••••456C"),
        ("12345678", "••••5678"),
        ("123456", "•••456"),  # never more than half of a short value
        ("ABCD", "••CD"),
        ("A", "•"),
        ("", ""),
        (None, None),
        (123456789, "•••••6789"),  # a key value that is not text
    ],
)
def test_mask_national_id_keeps_the_last_four_at_most(value, shown):
    assert mask_national_id(value) == shown


def test_mask_value_masks_national_id_only():
    assert mask_value("national_id", "123456789") == "•••••6789"
    assert mask_value("phone", "+447700900123") == "+447700900123"


def test_mask_record_masks_the_row_and_its_records_but_not_lineage():
    row = {
        "golden_id": "G1",
        "national_id": "123456789",
        "lineage": {"national_id": "billing:1"},  # attribute -> record id, not a value
        "record_l": {"record_id": "billing:1", "national_id": "123456789"},
        "record_r": {"record_id": "crm:2", "national_id": None},
    }
    masked = mask_record(row)
    assert masked == {
        "golden_id": "G1",
        "national_id": "•••••6789",
        "lineage": {"national_id": "billing:1"},
        "record_l": {"record_id": "billing:1", "national_id": "•••••6789"},
        "record_r": {"record_id": "crm:2", "national_id": None},
    }
    assert row["national_id"] == "123456789" and row["record_l"]["national_id"] == "123456789"  # not mutated


@pytest.mark.parametrize(
    "expression, reads",
    [
        ("national_id", True),
        ("substring(national_id, 1, 3)", True),
        ("CASE WHEN national_id IS NOT NULL THEN family_name END", True),
        ("family_name", False),
        ("concat(family_name, 'national_id')", False),  # a string literal is not a column
    ],
)
def test_reads_masked(expression, reads):
    assert reads_masked(expression) is reads


def test_mask_key_value():
    assert mask_key_value("national_id", "123456789") == "•••••6789"
    assert mask_key_value("national_id", None) is None
    assert mask_key_value("email", "a@b.co") == "a@b.co"
