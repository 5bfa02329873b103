import io
import json
from pathlib import Path

import pytest

from producers.files import (
    UsageError,
    csv_lines,
    file_format,
    jsonl_lines,
    reject_entry,
)


def test_jsonl_lines_keep_their_physical_line_numbers_and_skip_blank_lines():
    stream = io.StringIO('{"plate": "A1"}\n\n{"plate": "B2"}\r\n')
    lines = list(jsonl_lines(stream))
    assert [(line.number, line.body) for line in lines] == [
        (1, {"plate": "A1"}),
        (3, {"plate": "B2"}),
    ]


@pytest.mark.parametrize("text", ['{"plate": ', "[1, 2]", "NaN", '"plate"'])
def test_a_jsonl_line_that_is_not_an_object_is_9003(text):
    [line] = list(jsonl_lines(io.StringIO(text + "\n")))
    assert line.body is None
    assert line.error.code == 9003


def test_csv_records_map_header_names_to_cells_and_report_their_first_line():
    stream = io.StringIO(
        'LicencePlate,zone,permitNo\nPL8RDR,Lot 4,L4-1138\n"AB\nC",Lot 5,\n\nXY1,Lot 6,n\n'
    )
    lines = list(csv_lines(stream))
    assert [line.number for line in lines] == [2, 3, 6]
    assert lines[0].body == {"LicencePlate": "PL8RDR", "zone": "Lot 4", "permitNo": "L4-1138"}
    assert lines[1].body["LicencePlate"] == "AB\nC"
    assert lines[1].body["permitNo"] == ""  # an empty cell: the field is absent


def test_a_csv_row_with_more_cells_than_columns_is_9003():
    [line] = list(csv_lines(io.StringIO("plate,prov\nA1,MA,extra\n")))
    assert line.error.code == 9003
    assert line.number == 2


def test_the_format_comes_from_the_file_name_unless_given():
    assert file_format(Path("export.JSONL")) == "jsonl"
    assert file_format(Path("export.ndjson")) == "jsonl"
    assert file_format(Path("export.csv")) == "csv"
    assert file_format(Path("export.txt"), "csv") == "csv"
    with pytest.raises(UsageError):
        file_format(Path("export.txt"))


def test_a_reject_entry_names_line_code_and_field_and_masks_tokens():
    [line] = list(jsonl_lines(io.StringIO('{"apiToken": "secret-token-1", "plate": ""}\n')))
    entry = json.loads(reject_entry(line, 9006, "Plate is a required field.", "plate"))
    assert entry["line"] == 1
    assert (entry["error_code"], entry["field"]) == (9006, "plate")
    assert "secret-token-1" not in entry["input"]
