"""The file producer behind ``parkstream produce FILE --kind permit|vehicle|profile``.

Operators load vendor exports: JSON Lines (``.jsonl``, ``.ndjson``: one JSON object a
line) or CSV (``.csv``: a header row, then one record a line). Keys and column names
are the Controller's documented field names or aliases (``LicencePlate`` or
``plate``...), exactly as in a push body.

Each line is validated with the contract and published with the Python publisher
(same events, keys and reference ids as the gateway, ``source`` FILE). A bad line is
written to the rejects file (JSON Lines: line number, ErrorCode, message, field and
the line itself) and never stops the good ones. Lines the broker did not take are
written there too, with ``error_code`` null, so they can be produced again.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from tqdm import tqdm

from foundation.kafka import BrokerUnavailable, ensure_topics
from foundation.redaction import redact
from foundation.settings import Settings
from producers.publish import DeliveryReport, Publisher
from schemas.controller import ContractError, parse_body

KIND_ENDPOINTS = {
    "permit": "permits/push",
    "vehicle": "vehicles/push",
    "profile": "profiles/push",
}
log = logging.getLogger(__name__)

FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl", ".csv": "csv"}


class UsageError(ValueError):
    """The command was called wrongly (unknown format, missing file): exit code 2."""


@dataclass(frozen=True)
class Line:
    """One record of the input: its body, or the error that stops it being one."""

    number: int  # 1-based line number in the file (a CSV record's first line)
    text: str
    body: dict[str, Any] | None = None
    error: ContractError | None = None


@dataclass
class Tally:
    """Counts of one run."""

    read: int = 0
    accepted: int = 0
    rejected: int = 0
    undelivered: int = 0
    seconds: float = 0.0
    rejected_codes: dict[int, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.rejected == 0 and self.undelivered == 0

    def summary(self, rejects: Path | None = None) -> str:
        rate = self.read / self.seconds if self.seconds > 0 else 0.0
        where = f" (see {rejects})" if rejects is not None and not self.ok else ""
        codes = ", ".join(f"{code}: {n}" for code, n in sorted(self.rejected_codes.items()))
        by_code = f" [{codes}]" if codes else ""
        return (
            f"{self.read} lines read: {self.accepted} accepted, {self.rejected} rejected"
            f"{by_code}, {self.undelivered} not delivered{where}; "
            f"{self.seconds:.1f} s, {rate:.0f} lines/s"
        )


def file_format(path: Path, given: str | None = None) -> str:
    """``"jsonl"`` or ``"csv"``: ``given``, else from the file name's extension."""
    if given is not None:
        if given not in ("jsonl", "csv"):
            raise UsageError(f"unknown format {given!r}: jsonl or csv")
        return given
    found = FORMATS.get(path.suffix.lower())
    if found is None:
        raise UsageError(f"cannot tell the format of {path.name}: name it .jsonl or .csv")
    return found


def jsonl_lines(stream: TextIO) -> Iterator[Line]:
    """Records of a JSON Lines stream; blank lines are skipped."""
    for number, text in enumerate(stream, start=1):
        text = text.rstrip("\r\n")
        if not text.strip():
            continue
        try:
            body = parse_body(text.encode("utf-8"), "application/json")
        except ContractError as err:
            yield Line(number, text, error=err)
            continue
        if not isinstance(body, dict):
            yield Line(number, text, error=ContractError(9003, detail="not a JSON object"))
            continue
        yield Line(number, text, body=body)


def csv_lines(stream: TextIO) -> Iterator[Line]:
    """Records of a CSV stream with a header row; empty cells are absent fields."""
    reader = csv.reader(stream)
    try:
        header = next(reader)
    except StopIteration:
        return
    except csv.Error as exc:
        raise UsageError(f"unreadable CSV header: {exc}") from None
    header = [name.strip() for name in header]
    start = reader.line_num + 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error:
            yield Line(start, "", error=ContractError(9003, detail="malformed CSV record"))
            start = reader.line_num + 1
            continue
        number, start = start, reader.line_num + 1
        if not any(cell.strip() for cell in row):
            continue
        text = _csv_text(row)
        if len(row) > len(header):
            yield Line(number, text, error=ContractError(9003, detail="more cells than columns"))
            continue
        yield Line(number, text, body={name: cell for name, cell in zip(header, row, strict=False)})


def _csv_text(row: list[str]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow(row)
    return out.getvalue()


def read_lines(stream: TextIO, fmt: str) -> Iterator[Line]:
    """The records of ``stream`` in format ``fmt`` (``jsonl`` or ``csv``)."""
    return jsonl_lines(stream) if fmt == "jsonl" else csv_lines(stream)


def count_lines(path: Path) -> int:
    """Physical lines in ``path`` (the progress bar's total)."""
    with path.open("rb") as handle:
        return sum(1 for _ in handle)


def reject_entry(line: Line, code: int | None, message: str, field: str | None) -> str:
    """One rejects-file line (JSON); token values in the input are masked."""
    entry = {
        "line": line.number,
        "error_code": code,
        "error_message": message,
        "field": field,
        "input": redact(line.text),
    }
    return json.dumps(entry, ensure_ascii=False)


def produce_file(
    path: Path,
    kind: str,
    publisher: Publisher,
    rejects: TextIO,
    *,
    fmt: str | None = None,
    receipts: TextIO | None = None,
    progress: Any = None,
) -> Tally:
    """Publish every good line of ``path``; write every bad one to ``rejects``.

    ``progress`` (a tqdm bar, optional) is advanced once per physical record. Returns
    once every accepted line's delivery report has been received.
    """
    if kind not in KIND_ENDPOINTS:
        raise UsageError(f"unknown kind {kind!r}: {', '.join(KIND_ENDPOINTS)}")
    endpoint = KIND_ENDPOINTS[kind]
    fmt = file_format(path, fmt)
    tally = Tally()
    started = time.monotonic()

    def reject(line: Line, err: ContractError) -> None:
        tally.rejected += 1
        tally.rejected_codes[err.code] = tally.rejected_codes.get(err.code, 0) + 1
        rejects.write(reject_entry(line, err.code, err.message, err.field) + "\n")

    def delivered(line: Line) -> Any:
        def report(outcome: DeliveryReport) -> None:
            if outcome.delivered:
                tally.accepted += 1
                if receipts is not None and outcome.accepted is not None:
                    receipts.write(
                        json.dumps(
                            {"line": line.number, "reference_id": outcome.accepted.reference_id}
                        )
                        + "\n"
                    )
            else:
                tally.undelivered += 1
                rejects.write(
                    reject_entry(line, None, f"not delivered: {outcome.error}", None) + "\n"
                )

        return report

    with path.open(encoding="utf-8", errors="replace", newline="") as stream:
        for line in read_lines(stream, fmt):
            tally.read += 1
            if line.error is not None:
                reject(line, line.error)
            else:
                assert line.body is not None
                try:
                    publisher.publish(endpoint, line.body, on_delivery=delivered(line))
                except ContractError as err:
                    reject(line, err)
                except BrokerUnavailable as exc:
                    tally.undelivered += 1
                    rejects.write(reject_entry(line, None, f"not delivered: {exc}", None) + "\n")
            if progress is not None:
                progress.update(1)
    publisher.flush()
    tally.seconds = time.monotonic() - started
    return tally


def run_produce(
    settings: Settings,
    path: Path,
    *,
    kind: str,
    vendor: str,
    fmt: str | None = None,
    rejects: Path | None = None,
    receipts: Path | None = None,
) -> int:
    """``parkstream produce``: the exit code (0 all accepted, 1 not all, 2 usage error).

    A progress bar with the rate goes to stderr, the summary to stdout.
    """
    try:
        fmt = file_format(path, fmt)
        if not path.is_file():
            raise UsageError(f"no such file: {path}")
        if kind not in KIND_ENDPOINTS:
            raise UsageError(f"unknown kind {kind!r}: {', '.join(KIND_ENDPOINTS)}")
        if not vendor.strip():
            raise UsageError("--vendor must name the vendor")
    except UsageError as exc:
        print(f"parkstream produce: {exc}", file=sys.stderr)
        return 2
    rejects = rejects or path.with_name(path.name + ".rejects.jsonl")
    total = count_lines(path) - (1 if fmt == "csv" else 0)
    try:
        ensure_topics(settings)
    except Exception as exc:  # the admin client raises KafkaException and friends
        print(f"parkstream produce: broker unavailable: {exc}", file=sys.stderr)
        return 1
    with ExitStack() as stack:
        try:
            rejects_out = stack.enter_context(rejects.open("w", encoding="utf-8"))
            receipts_out = (
                stack.enter_context(receipts.open("w", encoding="utf-8")) if receipts else None
            )
        except OSError as exc:
            print(
                f"parkstream produce: cannot write {exc.filename}: {exc.strerror}", file=sys.stderr
            )
            return 2
        bar = stack.enter_context(
            tqdm(total=max(total, 0), unit=" lines", file=sys.stderr, mininterval=0.5)
        )
        publisher = Publisher(settings, vendor, source="FILE")
        try:
            tally = produce_file(
                path, kind, publisher, rejects_out, fmt=fmt, receipts=receipts_out, progress=bar
            )
        except UsageError as exc:
            print(f"parkstream produce: {exc}", file=sys.stderr)
            return 2
        finally:
            publisher.close()
        bar.update(max(bar.total - bar.n, 0))
    log.info(
        'file produced kind="%s" vendor="%s" read=%d accepted=%d rejected=%d undelivered=%d',
        kind,
        vendor,
        tally.read,
        tally.accepted,
        tally.rejected,
        tally.undelivered,
    )
    print(f"parkstream produce: {tally.summary(rejects)}")
    return 0 if tally.ok else 1
