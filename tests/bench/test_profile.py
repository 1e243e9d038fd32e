"""bench/profile.py: phases from stamped output, jobs and commits counted where they fell, most specific step."""

from __future__ import annotations

import json

from bench.profile import FINISH, STARTUP, Job, assemble, phases_from_output, read_event_log, step_of

LINES = [
    (101.0, "run r on lake x: ingest → match"),
    (102.0, "[ingest] started"),
    (105.0, "[ingest] done in 3.0 s"),
    (105.0, "[match] started"),
    (110.0, "  1000 records"),
    (115.0, "[match] done in 10.0 s"),
]


def test_phases_are_start_up_each_stage_and_the_finish():
    phases = phases_from_output(LINES, 100.0, 118.0)
    assert [(p.name, p.start, p.end) for p in phases] == [
        (STARTUP, 100.0, 102.0),
        ("ingest", 102.0, 105.0),
        ("match", 105.0, 115.0),
        (FINISH, 115.0, 118.0),
    ]


def test_a_job_counts_for_its_most_specific_step():
    session = "spark-session-1-thread-2-"
    assert step_of([f"{session}cdi:match", f"{session}cdi:match.train.u", "spark-session-1"]) == "match.train.u"
    assert step_of(["spark-session-1"]) is None


def test_jobs_and_commits_are_counted_in_the_phase_they_fell_in():
    jobs = [
        Job(103.0, 104.0, ("s-cdi:ingest",)),
        Job(106.0, 108.5, ("s-cdi:match", "s-cdi:match.score")),
        Job(109.0, 109.5, ()),
    ]
    commits = [(104.5, 1000), (114.0, 1699), (116.0, 3)]
    profile = assemble("x", ["cdi"], LINES, 100.0, 118.0, 0, jobs, commits)
    by_name = {p.name: (p.jobs, p.job_seconds, p.commits, p.rows_written) for p in profile.phases}
    assert by_name == {
        STARTUP: (0, 0.0, 0, 0),
        "ingest": (1, 1.0, 1, 1000),
        "match": (2, 3.0, 1, 1699),
        FINISH: (0, 0.0, 1, 3),
    }
    assert [(s.name, s.jobs, s.job_seconds) for s in profile.steps] == [("ingest", 1, 1.0), ("match.score", 1, 2.5)]
    assert profile.untagged_jobs == 1


def test_event_log_jobs_carry_their_times_and_tags(tmp_path):
    events = [
        {"Event": "SparkListenerJobStart", "Job ID": 7, "Submission Time": 1000,
         "Properties": {"spark.job.tags": "a-cdi:match,b"}},
        {"Event": "SparkListenerJobEnd", "Job ID": 7, "Completion Time": 3500},
        {"Event": "SparkListenerJobStart", "Job ID": 8, "Submission Time": 4000, "Properties": {}},
    ]
    (tmp_path / "app-1").write_text("\n".join(json.dumps(e) for e in events) + "\n")
    assert read_event_log(tmp_path) == [Job(1.0, 3.5, ("a-cdi:match", "b"))]
