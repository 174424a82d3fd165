"""The flan-jax command: listing, showing, exporting, bad names."""

import json

import pytest

from flan_jax import cli
from flan_jax.data import spec as ds
from tests import helpers


def run(capsys, *argv):
  cli.main(list(argv))
  return capsys.readouterr()


def test_list_tasks_with_glob_and_regex(capsys):
  out = run(capsys, "list-tasks", "world_nli_type_*_scoring_eval").out.split()
  scored = [i for i, t in enumerate(ds.DATASETS["world_nli"].templates) if not t.turned]
  assert len(scored) >= 5 and out == [f"world_nli_type_{i}_scoring_eval" for i in scored]
  out = run(capsys, "list-tasks", r"^world_qa_type_\d+$").out.split()
  assert out == [f"world_qa_type_{i}" for i in range(len(ds.DATASETS["world_qa"].templates))]


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


# --- a t5x/seqio user's words (issue: t5x names, team modules, clear errors) -------------------

TEAM_TASKS = str(__import__("pathlib").Path(__file__).parent / "team_tasks.py")


def _run_gin_macros() -> set[str]:
  from flan_jax.config import gin_utils
  files = [f"gin/runs/{n}.gin" for n in ("finetune", "eval", "infer")]
  return gin_utils.known_macros(files, [gin_utils.GIN_ROOT])


def test_every_t5x_name_is_an_alias_that_exists_or_names_what_to_use():
  import inspect

  from flan_jax import eval as eval_lib
  from flan_jax import infer, train
  from flan_jax.config import gin_utils
  from flan_jax.models import DecoderConfig
  from flan_jax.training import config as training
  configurables = {"train_script.train": train.train, "eval_script.evaluate": eval_lib.evaluate,
                   "infer_script.infer": infer.infer, "models.DecoderConfig": DecoderConfig,
                   **{cls.GIN_NAME: cls for cls in training.CONFIG_ARGUMENTS.values()}}
  known = _run_gin_macros()
  for name, entry in gin_utils.T5X_NAMES.items():
    binding = f"{name} = 1"
    if entry.alias is None:
      with pytest.raises(ValueError, match="t5x setting") as e:
        gin_utils.rewrite_t5x_bindings([binding], known)
      assert entry.hint and entry.hint in str(e.value), name
      continue
    (rewritten,) = gin_utils.rewrite_t5x_bindings([binding], known)
    target = rewritten.split(" =")[0]
    if "." in target:  # A binding: the configurable must take that parameter.
      configurable, parameter = target.rsplit(".", 1)
      assert parameter in inspect.signature(configurables[configurable]).parameters, name
    else:  # A macro that the run gin files define.
      assert target in known, name


def test_t5x_binding_alias_sets_the_flan_jax_macro():
  import gin

  from flan_jax.config import gin_utils
  gin.clear_config()
  try:
    gin_utils.parse_gin(["gin/runs/demo.gin"], ["utils.SaveCheckpointConfig.period = 7",
                                                "train/utils.DatasetConfig.batch_size = 4"])
    assert gin.query_parameter("%CHECKPOINT_PERIOD") == 7
    assert gin.query_parameter("%BATCH_SIZE") == 4
  finally:
    gin.clear_config()


def test_t5x_name_without_equivalent_names_the_flan_jax_binding():
  from flan_jax import train
  with pytest.raises(ValueError, match=r"num_partitions.*t5x setting.*MESH.*"
                     r"training\.PartitioningConfig\.mesh"):
    train.run(["--gin_file=gin/runs/demo.gin", "--gin.MODEL_DIR='/tmp/flan_jax_unused'",
               "--gin.partitioning.PjitPartitioner.num_partitions=2"])
  with pytest.raises(ValueError, match="MODEL_CONFIG: include a model gin"):
    train.run(["--gin_file=gin/runs/finetune.gin", "--gin.MODEL=None"])


def test_t5x_configurable_in_a_gin_file_gets_a_hint():
  from flan_jax import entry
  error = ValueError("No configurable matching 'utils.SaveCheckpointConfig'.\n  In file x.gin")
  assert "CHECKPOINT_PERIOD" in entry._config_error_text(error)


def test_unknown_task_suggests_importing_its_module(capsys):
  with pytest.raises(SystemExit):
    cli.main(["show", "team_data_to_text"])
  err = capsys.readouterr().err
  assert "MIXTURE_OR_TASK_MODULE" in err and "--module_import" in err


def test_module_import_on_data_commands(capsys, tmp_path):
  out = run(capsys, "list-tasks", "team_*", "--module_import", TEAM_TASKS).out.split()
  assert out == ["team_data_to_text", "team_flaky_eval"]
  out = run(capsys, "show", "team_data_to_text", "-n", "1", "--module_import", TEAM_TASKS).out
  assert "Write a sentence about the following data:" in out
  path = tmp_path / "team.jsonl"
  run(capsys, "export-data", "team_mixture", "--split", "test", "-o", str(path), "-n", "3",
      "--module_import", TEAM_TASKS)
  assert len(path.read_text().splitlines()) == 3
  with pytest.raises(SystemExit):
    cli.main(["list-tasks", "--module_import", "no_such_team.tasks"])
  err = capsys.readouterr().err
  assert "cannot import task module 'no_such_team.tasks'" in err and "PYTHONPATH" in err


def test_task_vocabulary_larger_than_the_model_fails_before_compiling(tmp_path):
  from flan_jax import train
  with pytest.raises(ValueError, match=r"vocabulary of 512 ids but the model's vocab_size is 256"
                     r".*vocab_size=512"):
    train.run(["--gin_file=gin/runs/demo.gin", f"--gin.MODEL_DIR='{tmp_path}'",
               "--gin.models.DecoderConfig.vocab_size=256"])
  assert not list(tmp_path.glob("checkpoint_*"))


def test_use_cached_tasks_default_works_and_true_says_how_to_cache():
  from flan_jax.data import registry
  from flan_jax.training import batches as data
  registry.ensure_registered()
  assert data.resolve_use_cached("world_qa_5templates", None) is False  # No cache: raw data.
  with pytest.raises(ValueError, match=r"no seqio cache.*flan-jax cache-tasks.*"
                     r"--seqio_additional_cache_dirs"):
    data.resolve_use_cached("world_qa_5templates", True)


def test_cache_tasks_without_apache_beam_says_what_to_install(monkeypatch):
  import builtins

  from flan_jax.training import batches as data
  real_import = builtins.__import__

  def no_beam(name, *args, **kwargs):
    if name == "apache_beam":
      raise ImportError("No module named 'apache_beam'")
    return real_import(name, *args, **kwargs)

  monkeypatch.setattr(builtins, "__import__", no_beam)
  with pytest.raises(SystemExit, match=r"flan_jax\[cache\]"):
    data.cache_tasks_main(["--tasks=world_qa_5templates", "--output_cache_dir=/tmp/x"])


def test_infer_bad_inputs_name_the_fix(tmp_path):
  from flan_jax import infer
  with pytest.raises(ValueError, match=r"TASK_FEATURE_LENGTHS must be \{'inputs'"):
    infer.infer("world_qa_type_0", str(tmp_path), str(tmp_path), {"targets": 8})
  with pytest.raises(ValueError, match="SHARD_ID < NUM_SHARDS"):
    infer.infer("world_qa_type_0", str(tmp_path), str(tmp_path), {"inputs": 8, "targets": 8},
                shard_id=2, num_shards=2)
  with pytest.raises(ValueError, match="no task with a 'dev' split; set SPLIT"):
    infer.infer("world_qa_type_0", str(tmp_path), str(tmp_path), {"inputs": 8, "targets": 8},
                split="dev")
  with pytest.raises(ValueError, match="plain-LM task"):
    infer.infer("offline_world_lm", str(tmp_path), str(tmp_path), {"inputs": 8, "targets": 8})


def _prepared_shard_probe(data_dir: str) -> None:
  """A TFDS dataset prepared offline: 23 train examples written as 4 files."""
  import tensorflow_datasets as tfds
  helpers.text_builder("FlanJaxShardProbe", 23)(data_dir=data_dir).download_and_prepare(
      download_config=tfds.download.DownloadConfig(num_shards=4))


def test_sharded_mixture_export_of_prepared_multi_file_tfds_data(tmp_path):
  """A mixture's parts are whole tasks, so the parts together are the unsharded export also for
  a 4-file TFDS split (seqio would give each of 2 example shards whole files) and a plain
  seqio.TfdsDataSource."""
  import seqio

  from flan_jax import export_data
  from flan_jax.data import registry, vocab
  registry.ensure_registered()
  _prepared_shard_probe(str(tmp_path / "tfds"))
  seqio.set_tfds_data_dir_override(str(tmp_path / "tfds"))
  try:
    for name, source in (
        ("test_shard_probe", ds.TfdsSource("flan_jax_shard_probe:1.0.0", {"train": "train"})),
        ("test_shard_probe_plain", seqio.TfdsDataSource("flan_jax_shard_probe:1.0.0"))):
      if name not in seqio.TaskRegistry.names():
        seqio.TaskRegistry.add(name, source=source, preprocessors=[seqio.preprocessors.tokenize],
                               output_features=vocab.output_features())
        seqio.MixtureRegistry.add(f"{name}_mix", [(name, 2.0), ("world_qa_type_1", 1.0)])
    assert len(seqio.get_mixture_or_task("test_shard_probe").source.list_shards("train")) == 4

    for mix in ("test_shard_probe_mix", "test_shard_probe_plain_mix"):
      def lines(shard, mix=mix):
        rows, _ = export_data.records(mix, num_examples=60, shard=shard)
        return [json.dumps(r, sort_keys=True) for r in rows]

      whole, part0, part1 = lines(None), lines((0, 2)), lines((1, 2))
      probe = [line for line in whole if "question" in line]
      assert len(whole) == 60 and len(probe) == 40  # 23 examples, then 17 of the next epoch
      assert part0 and part1 and sorted(whole) == sorted(part0 + part1)
      in_part0 = set(part0)
      assert part0 == [line for line in whole if line in in_part0]  # the whole's order
  finally:
    seqio.set_tfds_data_dir_override(None)
