"""The flan-jax command: listing, showing, exporting, bad names."""

import json

import pytest

from flan_jax import cli


def run(capsys, *argv):
  cli.main(list(argv))
  return capsys.readouterr()


def test_list_tasks_with_glob_and_regex(capsys):
  out = run(capsys, "list-tasks", "world_nli_type_*_scoring_eval").out.split()
  assert out == [f"world_nli_type_{i}_scoring_eval" for i in range(3)]
  out = run(capsys, "list-tasks", r"^world_qa_type_\d+$").out.split()
  assert out == [f"world_qa_type_{i}" for i in range(4)]


def test_list_mixtures_filter(capsys):
  out = run(capsys, "list-mixtures", "demo_heldout_*_train").out.split()
  assert "demo_heldout_nli_train" in out and all(n.endswith("_train") for n in out)


def test_show_prints_rendered_examples(capsys):
  out = run(capsys, "show", "world_nli_type_0", "-n", "2").out
  assert out.count("===== example") == 2
  assert "OPTIONS:\n- yes\n- it is not possible to tell\n- no" in out


def test_export_data_command(tmp_path, capsys):
  path = tmp_path / "out.jsonl"
  run(capsys, "export-data", "world_qa_type_1", "--split", "test", "-o", str(path), "-n", "5")
  rows = [json.loads(x) for x in path.read_text().splitlines()]
  assert len(rows) == 5 and rows[0]["inputs"].startswith("Q: ") and rows[0]["template_idx"] == 1


def test_unknown_name_exits_with_suggestions(capsys):
  with pytest.raises(SystemExit) as e:
    cli.main(["show", "world_nli_typ_0"])
  assert e.value.code == 2
  err = capsys.readouterr().err
  assert "Unknown task or mixture 'world_nli_typ_0'" in err and "world_nli_type_0" in err


def test_entry_points_report_config_errors_without_traceback():
  import pathlib
  import subprocess
  import sys
  proc = subprocess.run(
      [sys.executable, "-m", "flan_jax.eval", "--gin_file=gin/runs/eval.gin",
       "--gin.CHECKPOINT_PATH='x'", "--gin.EVAL_OUTPUT_DIR='y'"],
      capture_output=True, text=True, cwd=str(pathlib.Path(__file__).parents[1]))
  assert proc.returncode == 1
  assert "flan-jax eval: error: required gin macro(s) not set: MIXTURE_OR_TASK_NAME" in proc.stderr
  assert "Traceback" not in proc.stderr
