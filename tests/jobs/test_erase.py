"""``cdi erase`` end to end: a person planted in every source is gone from every file under the lake.

One module fixture builds the story once (the pipeline's Spark work is the
cost): a small demo lake with Zebulonia Quixotewright in all four sources
(her webshop signup quarantined in the first run, fixed in the second), two
runs, a steward decision about her, a dry run, the erasure by golden id, a
third run over the same sources, the suppression lifted and a fourth run
(up to validate: back in silver is back).
The tests then read what each step left. The scan reads every Parquet file
with pyarrow (every column, nested ones included, as text) and every other
file as text, data files, ``_delta_log`` commits, checksums and checkpoints,
run folders and Data Docs alike.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import re
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable

from config.lake import Lake
from config.pipeline import load_pipeline_config
from demo.generator import generate
from jobs.cli import main
from jobs.pipeline import STAGES, run_pipeline
from tests.demo_run import without_activities
from jobs.runs import RunContext
from steward.decisions import pair_decision
from steward.store import Store

pytestmark = [pytest.mark.slow, pytest.mark.timeout(2400)]

CONF = Path(__file__).resolve().parents[2] / "conf" / "cdi.yaml"
KEYS = {"sales_crm": "9001", "billing": "900001", "support_desk": "SUP-ZQX001", "webshop": "W-ZQX00001"}
RECORD_IDS = {f"{source}:{key}" for source, key in KEYS.items()}
# Her values as the sources write them and as standardize makes them, and her keys: searched for in lower case.
NEEDLES = (
    "zebulonia",
    "quixotewright",
    "marmaladewick",
    "quillborough",
    "zeb.qxw@example.org",
    "zeb.qxw",
    "07911 123987",
    "+44 7911 123987",
    "(07911) 123987",
    "+447911123987",
    "7911123987",
    "qx7 3zw",
    "qx73zw",
    "1908-02-29",
    "29/02/1908",
    "02/29/1908",
    "29.02.1908",
    *(record.lower() for record in RECORD_IDS),
    "sup-zqx001",
    "w-zqx00001",
)


def plant(data: Path, birthday: str) -> None:
    """Put Zebulonia in every source (replacing her earlier rows): her webshop ``birthday`` as given."""
    with contextlib.closing(sqlite3.connect(data / "sales_crm.db")) as crm, crm:
        crm.execute(
            "INSERT OR REPLACE INTO crm_contacts VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                9001,
                "Zebulonia",
                None,
                "Quixotewright",
                "1908-02-29",
                "F",
                "zeb.qxw@example.org",
                "07911 123987",
                "17 Marmaladewick Lane",
                "Quillborough",
                "QX7 3ZW",
                "United Kingdom",
                "2025-06-01 10:00:00",
            ),
        )
    with contextlib.closing(sqlite3.connect(data / "billing.db")) as billing, billing:
        billing.execute(
            "INSERT OR REPLACE INTO billing_accounts VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                900001,
                "Mrs",
                "Zebulonia",
                "Quixotewright",
                "29/02/1908",
                "zeb.qxw@example.org",
                "+44 7911 123987",
                "17 Marmaladewick Ln",
                None,
                "QUILLBOROUGH",
                "QX7 3ZW",
                "GB",
                "2025-06-02T10:00:00",
            ),
        )
    support = data / "support_desk.csv"
    rows = [row for row in csv.reader(support.open(encoding="utf-8", newline="")) if row[0] != KEYS["support_desk"]]
    rows.append(
        [
            KEYS["support_desk"],
            "Zebulonia Quixotewright",
            "02/29/1908",
            "(07911) 123987",
            "zeb.qxw@example.org",
            "Quillborough",
            "QX73ZW",
            "2025-06-03T10:00:00Z",
        ]
    )
    with support.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows(rows)
    signups = data / "webshop_signups.jsonl"
    lines = [line for line in signups.read_text(encoding="utf-8").splitlines() if KEYS["webshop"] not in line]
    lines.append(
        json.dumps(
            {
                "signup_id": KEYS["webshop"],
                "given_name": "Zebulonia",
                "family_name": "Quixotewright",
                "birthday": birthday,
                "email": "zeb.qxw@example.org",
                "mobile": "+447911123987",
                "address": {
                    "line1": "17 Marmaladewick Lane",
                    "line2": None,
                    "city": "Quillborough",
                    "postcode": "qx7 3zw",
                    "country": "GB",
                },
                "created_at": "2025-06-04T10:00:00",
            }
        )
    )
    signups.write_text("\n".join(lines) + "\n", encoding="utf-8")


def file_text(path: Path) -> str:
    if path.suffix == ".parquet":
        return json.dumps(pq.read_table(path).to_pylist(), default=str, ensure_ascii=False)
    return path.read_bytes().decode("utf-8", errors="ignore")


def scan(root: Path) -> list[str]:
    """``file: value`` for every needle found in any file under ``root``."""
    hits = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        text = file_text(path).lower()
        hits += [f"{path.relative_to(root)}: {needle}" for needle in NEEDLES if needle in text]
    return hits


def files_of(root: Path) -> dict[str, float]:
    return {str(p.relative_to(root)): p.stat().st_mtime for p in root.rglob("*") if p.is_file()}


def table(lake: Lake, *parts: str) -> pd.DataFrame:
    return DeltaTable(lake.path(*parts)).to_pandas()


def her_rows(frame: pd.DataFrame) -> pd.DataFrame:
    if "record_id" in frame:
        return frame[frame["record_id"].isin(RECORD_IDS)]
    return frame[frame["source_key"].isin(KEYS.values())]


def cli(lake: Path, *args: str) -> tuple[int, str]:
    """``cdi <args>`` on ``lake`` (through the demo config), with what it printed."""
    out = io.StringIO()
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(out):
        patch.setenv("CDI_LAKE", str(lake))
        code = main([args[0], "--config", str(CONF), *args[1:]])
    return code, out.getvalue()


@dataclass(frozen=True)
class State:
    """What the lake holds of her at one point of the story."""

    hits: list[str]
    bronze: int
    std: int
    live_xref: int
    golden: pd.DataFrame  # her golden ids' rows
    audit: pd.DataFrame  # ops/run_audit


def state_of(lake: Lake, golden_ids: list[str]) -> State:
    bronze = sum(len(her_rows(table(lake, "bronze", source))) for source in KEYS)
    xref = table(lake, "gold", "customer_xref")
    live = her_rows(xref)
    live = live[live["valid_to"].isna() & (live["linked_by"] != "erased")]
    golden = table(lake, "gold", "golden_customers")
    return State(
        hits=scan(Path(lake.root)),
        bronze=bronze,
        std=len(her_rows(table(lake, "silver", "customers_std"))),
        live_xref=len(live),
        golden=golden[golden["golden_id"].isin(golden_ids)],
        audit=table(lake, "ops", "run_audit"),
    )


@dataclass(frozen=True)
class Story:
    lake: Lake
    golden_ids: list[str]
    before: State  # after two runs
    dry_run: tuple[int, str, bool]  # exit code, output, whether the lake stayed as it was
    erase: tuple[int, str]
    erased: State
    erasure_log: pd.DataFrame
    suppressions: pd.DataFrame
    feed: pd.DataFrame  # golden_customers' change feed from the erasure's publication marker on
    third: State
    listed: str
    lift: tuple[int, str]
    fourth: State


def run(spark, lake: Path, run_id: str, stages: tuple[str, ...] = STAGES) -> None:
    config = without_activities(load_pipeline_config(CONF)).model_copy(update={"lake": str(lake)})
    context = RunContext.create(config, run_id, started_at=datetime.now(timezone.utc).replace(microsecond=0))
    run_pipeline(spark, context, stages)


@pytest.fixture(scope="module")
def story(spark, tmp_path_factory) -> Story:
    data = tmp_path_factory.mktemp("sources")
    root = tmp_path_factory.mktemp("erase") / "lake"
    lake = Lake.at(root)
    generate(data, customers=15, seed=8)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CDI_DATA_DIR", str(data))
        patch.setenv("CDI_LAKE", str(root))
        plant(data, birthday="29.02.1908")  # not YYYY-MM-DD: quarantined by validate
        run(spark, root, "run-1")
        plant(data, birthday="1908-02-29")
        run(spark, root, "run-2")

        xref = table(lake, "gold", "customer_xref")
        golden_ids = sorted(set(her_rows(xref)["golden_id"]))
        someone_else = sorted(set(xref["record_id"]) - RECORD_IDS)[0]
        Store(lake).append_decision(
            pair_decision("steward1", "no_match", "sales_crm:9001", someone_else, "Zebulonia Quixotewright is not them")
        )
        before = state_of(lake, golden_ids)

        files = files_of(root)
        code, out = cli(
            root, "erase", *[a for g in golden_ids for a in ("--golden-id", g)], "--reason", "DSR-1", "--dry-run"
        )
        dry_run = (code, out, files_of(root) == files)

        erase = cli(
            root,
            "erase",
            *[a for g in golden_ids for a in ("--golden-id", g)],
            "--reason",
            "DSR-1",
            "--requested-by",
            "dpo",
        )
        erased = state_of(lake, golden_ids)
        erasure_log = table(lake, "ops", "erasure_log")
        suppressions = table(lake, "ops", "suppressions")
        marker = table(lake, "gold", "_publications").sort_values("published_at").iloc[-1]
        feed = pa.table(
            DeltaTable(lake.gold("golden_customers")).load_cdf(starting_version=int(marker["golden_customers_version"]))
        ).to_pandas()

        run(spark, root, "run-3")
        third = state_of(lake, golden_ids)

        listed = cli(root, "suppressions")[1]
        lift = cli(root, "suppressions", "--lift", erasure_log["erasure_id"].iloc[0], "--by", "dpo")
        run(spark, root, "run-4", STAGES[: STAGES.index("validate") + 1])  # back in silver is back
        fourth = state_of(lake, golden_ids)
    return Story(
        lake, golden_ids, before, dry_run, erase, erased, erasure_log, suppressions, feed, third, listed, lift, fourth
    )


def test_she_was_in_every_layer_before(story):
    before = story.before
    assert story.golden_ids
    assert before.bronze == 5  # one row per source, and two versions of her webshop signup
    assert before.std == 4 and before.live_xref == 4
    found = {hit.split(": ")[1] for hit in before.hits}
    assert {"zebulonia", "quixotewright", "+447911123987", "29.02.1908"} <= found
    assert any(h.startswith("silver/quarantine/") for h in before.hits)
    assert any(h.startswith("_runs/run-2/model.json") for h in before.hits)


def test_a_dry_run_counts_and_writes_nothing(story):
    code, out, unchanged = story.dry_run
    assert code == 0 and unchanged
    assert "dry run: nothing written" in out
    assert "bronze/webshop" in out and "gold/steward_decisions" in out
    assert not any(needle in out.lower() for needle in NEEDLES)


def test_nothing_of_her_is_left_anywhere_under_the_lake(story):
    code, out = story.erase
    assert code == 0
    assert story.erased.hits == []
    assert (story.erased.bronze, story.erased.std, story.erased.live_xref) == (0, 0, 0)
    assert not any(needle in out.lower() for needle in NEEDLES)
    for phase in ("resolve", "values", "suppress", "tables", "vacuum", "files", "log"):
        assert f"[erase] {phase} done in " in out
    assert "wall time: resolve" in out


def test_her_golden_record_and_xref_rows_stay_as_empty_lineage(story):
    golden = story.erased.golden
    assert set(golden["status"]) == {"erased"} and set(golden["num_records"]) == {0}
    assert golden[["given_name", "family_name", "email", "phone", "lineage"]].isna().all().all()
    xref = table(story.lake, "gold", "customer_xref")
    closed = xref[xref["golden_id"].isin(story.golden_ids)]
    assert len(closed) == 4
    assert set(closed["linked_by"]) == {"erased"} and closed["valid_to"].notna().all()
    assert closed["record_id"].str.fullmatch(r"erased:[0-9a-f]{64}").all()
    history = table(story.lake, "gold", "golden_id_history")
    assert set(history.loc[history["event"] == "erase", "golden_id"]) == set(story.golden_ids)
    assert table(story.lake, "gold", "steward_decisions").empty


def test_the_erasure_log_and_suppressions_hold_hashes_not_values(story):
    [entry] = story.erasure_log.to_dict("records")
    assert entry["requested_by"] == "dpo" and entry["reason"] == "DSR-1" and entry["vacuum_retention_hours"] == 0
    assert sorted(entry["golden_ids"]) == story.golden_ids
    assert len(entry["key_hashes"]) == 4
    counts = dict(entry["counts"])
    assert counts["bronze/webshop"] == 2 and counts["gold/customer_xref"] == 4 and counts["suppressed_keys"] == 4
    suppressions = story.suppressions
    assert sorted(suppressions["key_hash"]) == sorted(entry["key_hashes"])
    assert suppressions["lifted_at"].isna().all()


def test_old_versions_are_gone_and_the_next_run_starts_from_the_erased_state(story):
    lake = story.lake
    with pytest.raises(FileNotFoundError):  # time travel to before the erasure: its files are vacuumed
        DeltaTable(lake.gold("customer_xref"), version=1).to_pandas()
    erasure_id = story.erasure_log["erasure_id"].iloc[0]
    publications = table(lake, "gold", "_publications").sort_values("published_at")
    assert list(publications["run_id"]) == ["run-1", "run-2", erasure_id, "run-3"]
    erasure = publications[publications["run_id"] == erasure_id].iloc[0]
    at_erasure = DeltaTable(lake.gold("customer_xref"), version=int(erasure["customer_xref_version"])).to_pandas()
    assert her_rows(at_erasure).empty and (at_erasure["linked_by"] == "erased").sum() == 4


def test_the_change_feed_from_the_erasure_on_shows_her_golden_record_erased(story):
    feed = story.feed[story.feed["golden_id"].isin(story.golden_ids)]
    after = feed[feed["_change_type"] == "update_postimage"]
    assert set(after["golden_id"]) == set(story.golden_ids)
    assert set(after["status"]) == {"erased"} and after["family_name"].isna().all()


def test_a_third_run_does_not_bring_her_back(story):
    third = story.third
    assert third.hits == []
    assert (third.bronze, third.std, third.live_xref) == (0, 0, 0)
    assert set(third.golden["status"]) == {"erased"}
    audit = third.audit
    ingest = audit[(audit["run_id"] == "run-3") & (audit["stage"] == "ingest") & audit["source_system"].notna()]
    suppressed = {row.source_system: json.loads(row.detail)["suppressed"] for row in ingest.itertuples()}
    assert suppressed == {source: 1 for source in KEYS}


def test_lifting_the_suppression_lets_the_next_run_land_her_again(story):
    assert story.erasure_log["erasure_id"].iloc[0] in story.listed and "(in force)" in story.listed
    code, out = story.lift
    assert code == 0 and "4 key(s) no longer suppressed" in out
    fourth = story.fourth
    assert (fourth.bronze, fourth.std) == (4, 4)
    std = her_rows(table(story.lake, "silver", "customers_std"))
    assert set(std["family_name"]) == {"quixotewright"}
    assert set(fourth.golden["status"]) == {"erased"}  # her next publish gives her a new golden id


def test_unknown_people_are_a_config_error_and_nothing_is_written(story):
    root = Path(story.lake.root)
    files = files_of(root)
    assert cli(root, "erase", "--golden-id", "Gnope", "--reason", "DSR-2")[0] == 2
    assert cli(root, "erase", "--source", "webshop", "--key", "W-NOBODY", "--reason", "DSR-2")[0] == 2
    assert cli(root, "erase", "--golden-id", story.golden_ids[0], "--reason", " ")[0] == 2
    assert files_of(root) == files


def test_a_key_leads_to_its_golden_customer_even_after_an_erasure_hashed_it(story):
    """Back after the lift, she can be erased again through one of her keys: the hash finds her old golden id."""
    root = Path(story.lake.root)
    files = files_of(root)
    code, out = cli(root, "erase", "--source", "sales_crm", "--key", "9001", "--reason", "DSR-3", "--dry-run")
    assert code == 0 and files_of(root) == files
    [golden_id] = re.findall(r"the sales_crm record of key #1 belongs to golden customer (\S+): erasing all of it", out)
    assert golden_id in story.golden_ids
    rows = {table: int(count) for table, count in re.findall(r"^  (\S+)\s+(\d+)$", out, re.MULTILINE)}
    assert (rows["bronze/sales_crm"], rows["silver/customers_std"]) == (1, 4)
    assert rows["gold/golden_customers"] == 0  # already erased
