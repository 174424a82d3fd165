"""flan_jax's tasks on real rows of original dataset releases, checked against the FLAN reference.

The releases sit in ``<repo>/../shared/realdata`` (one folder per dataset; CI has it, a user's
checkout usually not: then these tests skip). Each dataset is built once by TFDS's own
builder on those files (:mod:`flan_jax.data.real_rows`), its FLAN test split read through
``{name}_type_0`` and every row compared with what the reference's preprocessing gives for the
same raw row; the CoT files through ``flan2022_cot_{d}_zs_opt``. ``flan-jax check-real`` runs the
same checks.
"""

import os

import pytest
import seqio

from flan_jax import check_real
from flan_jax.data import real_rows

REALDATA = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), os.pardir,
                        "shared", "realdata")
COT_ROWS = 400  # rows of each CoT file read through the task (the size check covers every row)

needs_realdata = pytest.mark.skipif(not os.path.isdir(REALDATA),
                                    reason=f"no real rows at {REALDATA}")


@needs_realdata
def test_every_release_folder_is_checked():
  folders = {f for f in os.listdir(REALDATA) if os.path.isdir(os.path.join(REALDATA, f))}
  assert folders <= set(real_rows.FOLDERS), sorted(folders - set(real_rows.FOLDERS))


@needs_realdata
def test_real_rows_match_the_reference(tmp_path):
  # One test, not one per dataset: under `pytest -n 2` a shared fixture is built once per worker.
  try:
    outcomes = real_rows.check(REALDATA, str(tmp_path / "tfds"), str(tmp_path / "staged"),
                               cot_max_rows=COT_ROWS)
  finally:
    seqio.set_tfds_data_dir_override(None)
  cot_files = [f for f in os.listdir(os.path.join(REALDATA, "cot")) if f.endswith("_train.tsv")]
  assert sorted(o.dataset for o in outcomes) == sorted(
      [d.name for d in real_rows.DATASETS] + ["cot_" + f[:-len("_train.tsv")] for f in cot_files])
  failures = [f"{o.dataset}: {f}" for o in outcomes for f in o.failures]
  assert not failures, real_rows.table(outcomes) + "\n\n" + "\n".join(failures)
  for o in outcomes:  # sizes, rows kept, every answer, fields shown (+ options, references)
    assert o.present and o.rows > 0 and o.passed >= 4, o


def test_a_failed_row_check_names_the_first_row():
  o = real_rows.Outcome("x", "x")
  assert not o.rows_agree("answer", [(0, "a", "a"), (1, "b", "c"), (2, "d", "e")])
  assert o.failures == ["answer: 2 of 3 rows differ; first row 1: got 'b', expected 'c'"]
  assert o.rows_agree("answer", [(0, "a", "a")]) and o.passed == 1


def test_reference_split_sizes():
  assert real_rows.expected_size(8551, slice(None, -200)) == 8351
  assert real_rows.expected_size(1043, slice(None)) == 1043
  assert real_rows.expected_size(87925, slice(None, 30000)) == 30000
  # TFDS refuses a bound beyond the split (the release is too small for the reference's map).
  assert real_rows.expected_size(32, slice(None, -50)) is None
  assert real_rows.expected_size(3610, slice(None, 30000)) is None


def test_reference_cleaning_from_raw_rows():
  e2e = real_rows._e2e_expect({"mr": "name[The Eagle], eatType[coffee shop]", "ref": "x"})
  assert e2e.shown == ("name = The Eagle, eatType = coffee shop",)
  dart = real_rows._dart_expect({"tripleset": [["[TABLECONTEXT]", "[TITLE]", "Films"],
                                               ["Ann", "year", "1999"]],
                                 "annotations": [{"text": "a"}, {"text": "b"}]})
  assert dart.shown == ("  Films; Ann year 1999",) and dart.answers == ("a", "b")
  record = real_rows._record({"query": "@placeholder won the cup.", "entities": ["A", "B"],
                              "answers": ["B"], "passage": "Text.\n@highlight\nMore"})
  assert record.options == ("A won the cup.", "B won the cup.")
  assert record.target == "B won the cup."
  assert record.shown[:2] == ("Text.", "")


def test_check_real_lists_absent_folders(tmp_path, capsys):
  releases = tmp_path / "releases"
  releases.mkdir()
  assert check_real.main([str(releases), "--work_dir", str(tmp_path / "work")]) == 0
  out = capsys.readouterr().out
  for d in real_rows.DATASETS:
    assert d.name in out
  assert out.count("not present") == len(real_rows.DATASETS) + 1  # + the CoT files


def test_check_real_reports_an_unreadable_release(tmp_path, capsys):
  (tmp_path / "trec").mkdir()  # present, but without the files TFDS's trec builder reads
  (tmp_path / "cot").mkdir()
  (tmp_path / "cot" / "x_train.tsv").write_text("question only\n")
  assert check_real.main([str(tmp_path), "--only", "trec,cot", "--work_dir",
                          str(tmp_path / "work")]) == 1
  out = capsys.readouterr().out
  assert "TFDS build: FileNotFoundError: trec:1.0.0: none of its splits' files" in out
  assert "x_train.tsv:1: expected 3 tab-separated columns" in out


def test_check_real_refuses_a_missing_dir_and_unknown_names(tmp_path):
  with pytest.raises(FileNotFoundError, match="No releases directory"):
    check_real.main([str(tmp_path / "nowhere"), "--work_dir", str(tmp_path)])
  with pytest.raises(SystemExit, match="unknown dataset"):
    check_real.main([str(tmp_path), "--only", "colaa"])
