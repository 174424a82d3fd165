"""gin builds train()'s typed configs (t5x style) from gin/runs/finetune.gin: the macros, the t5x
aliases and the names of before the typed configs land on the dataclass fields, and a bad value
fails (naming the macro, the field and what is allowed) before anything is created."""

from __future__ import annotations

import gin
import pytest

from flan_jax import entry
from flan_jax import train as train_lib
from flan_jax.config import gin_utils
from flan_jax.training import checkpoints
from flan_jax.training import config as training

FILES = ["--gin_file=gin/models/tiny.gin", "--gin_file=gin/runs/finetune.gin",
         "--gin.MIXTURE_OR_TASK_NAME='demo_heldout_nli_train'",
         "--gin.TASK_FEATURE_LENGTHS={'inputs': 32, 'targets': 8}", "--gin.TRAIN_STEPS=3"]


@pytest.fixture
def received(tmp_path, monkeypatch):
  """``received(*flags)``: the TrainConfig that ``flan-jax train FILES flags`` gives the loop
  (nothing is trained), and whether MODEL_DIR was created."""
  monkeypatch.setattr(train_lib, "_run", lambda cfg: cfg)

  def run(*flags: str) -> training.TrainConfig:
    try:
      return train_lib.run([*FILES, f"--gin.MODEL_DIR='{tmp_path}/run'", *flags])
    finally:
      gin.clear_config()

  return run


def test_finetune_gin_builds_the_typed_configs_with_its_defaults(received):
  cfg = received()
  assert isinstance(cfg.optimizer, training.OptimizerConfig)
  assert cfg.optimizer == training.OptimizerConfig(name="adafactor", learning_rate=0.001)
  assert cfg.checkpoint == training.CheckpointConfig(period=1000, keep=None)
  assert cfg.eval == training.EvalConfig() and not cfg.eval.enabled
  assert cfg.partitioning == training.PartitioningConfig("data=-1,model=1", "1d")
  assert (cfg.batch_size, cfg.dropout_rate, cfg.train_steps, cfg.packer) == (128, 0.1, 3, "seqio")


def test_macros_land_on_the_dataclass_fields(received):
  cfg = received("--gin.LEARNING_RATE=0.01", "--gin.CHECKPOINT_PERIOD=5",
                 "--gin.KEEP_CHECKPOINTS=2", "--gin.NUM_MICROBATCHES=2", "--gin.BATCH_SIZE=8",
                 "--gin.EVAL_PERIOD=10", "--gin.EVAL_MIXTURE_OR_TASK_NAME='demo_heldout_nli_eval'",
                 "--gin.EVAL_SPLIT='test'", "--gin.MESH='data=2,model=4'",
                 "--gin.PARTITIONING_RULES='2d'", "--gin.ALLOW_CONFIG_CHANGE=True",
                 "--gin.Z_LOSS=0.0", "--gin.RANDOM_SEED=3", "--gin.PACKER='best_fit'",
                 "--gin.training.OptimizerConfig.schedule='cosine'",
                 "--gin.training.OptimizerConfig.warmup_steps=2")
  assert cfg.optimizer.learning_rate == 0.01 and cfg.optimizer.num_microbatches == 2
  assert (cfg.optimizer.schedule, cfg.optimizer.warmup_steps, cfg.optimizer.z_loss) == (
      "cosine", 2, 0.0)
  assert cfg.checkpoint == training.CheckpointConfig(period=5, keep=2, allow_config_change=True)
  assert cfg.eval == training.EvalConfig(10, "demo_heldout_nli_eval", "test")
  assert cfg.partitioning == training.PartitioningConfig("data=2,model=4", "2d")
  assert (cfg.batch_size, cfg.random_seed, cfg.packer) == (8, 3, "best_fit")


def test_t5x_aliases_land_on_the_dataclass_fields(received):
  cfg = received("--gin.utils.SaveCheckpointConfig.period=7",
                 "--gin.utils.SaveCheckpointConfig.keep=4",
                 "--gin.trainer.Trainer.num_microbatches=2",
                 "--gin.utils.create_learning_rate_scheduler.base_learning_rate=0.2",
                 "--gin.utils.create_learning_rate_scheduler.warmup_steps=3",
                 "--gin.train/utils.DatasetConfig.batch_size=4", "--gin.EVALUATOR_NUM_EXAMPLES=12",
                 "--gin.train.eval_period=6",
                 "--gin.EVAL_MIXTURE_OR_TASK_NAME='demo_heldout_nli_eval'")
  assert (cfg.checkpoint.period, cfg.checkpoint.keep) == (7, 4)
  assert (cfg.optimizer.num_microbatches, cfg.optimizer.learning_rate,
          cfg.optimizer.warmup_steps) == (2, 0.2, 3)
  assert (cfg.batch_size, cfg.eval.num_examples, cfg.eval.period) == (4, 12, 6)


def test_bindings_of_before_the_typed_configs_still_work_from_the_command_line(received):
  cfg = received("--gin.train_script.train.learning_rate=0.5",
                 "--gin.train_script.train.mesh='data=1,model=1'",
                 "--gin.train_script.train.checkpoint_period=9",
                 "--gin.train_script.train.eval_num_examples=5")
  assert cfg.optimizer.learning_rate == 0.5 and cfg.partitioning.mesh == "data=1,model=1"
  assert (cfg.checkpoint.period, cfg.eval.num_examples) == (9, 5)


@pytest.mark.parametrize("flag, message", [
    ("--gin.LEARNING_RATE=-1.0",
     "LEARNING_RATE (training.OptimizerConfig.learning_rate) must be a number > 0, got -1.0"),
    ("--gin.training.OptimizerConfig.name='adam'",
     "training.OptimizerConfig.name must be one of ('adafactor', 'adamw'), got 'adam'"),
    ("--gin.training.OptimizerConfig.schedule='cosin'",
     "training.OptimizerConfig.schedule must be one of ('constant', 'linear_warmup', 'rsqrt', "
     "'cosine'), got 'cosin'"),
    ("--gin.LOSS_NORMALIZING_FACTOR='TOKENS'",
     "LOSS_NORMALIZING_FACTOR (training.OptimizerConfig.loss_normalizing_factor) must be one of "
     "('NUM_REAL_TARGET_TOKENS'"),
    ("--gin.CHECKPOINT_PERIOD=0",
     "CHECKPOINT_PERIOD (training.CheckpointConfig.period) must be an integer >= 1, got 0 (int)"),
    ("--gin.KEEP_CHECKPOINTS=0",
     "KEEP_CHECKPOINTS (training.CheckpointConfig.keep) must be an integer >= 1 or None, got 0"),
    ("--gin.NUM_MICROBATCHES=0",
     "NUM_MICROBATCHES (training.OptimizerConfig.num_microbatches) must be an integer >= 1"),
    ("--gin.EVAL_PERIOD=0", "EVAL_PERIOD (training.EvalConfig.period) must be an integer >= 1 "
     "or None, got 0"),
    ("--gin.EVAL_PERIOD=5", "EVAL_PERIOD (training.EvalConfig.period) needs "
     "EVAL_MIXTURE_OR_TASK_NAME"),
    ("--gin.MESH='dta=2'", "MESH (training.PartitioningConfig.mesh) must be a mesh such as "
     "'data=4,model=2'"),
    ("--gin.PARTITIONING_RULES='3d'", "PARTITIONING_RULES (training.PartitioningConfig.rules) must "
     "be one of ('1d', '2d_params', '2d', '2d_activations', 'fsdp'), got '3d'"),
    ("--gin.PACKER='greedy'", "unknown packer 'greedy' (PACKER); use one of ('seqio', 'best_fit')"),
    ("--gin.BATCH_SIZE='eight'",
     "BATCH_SIZE (train_script.train.batch_size) must be an integer >= 1, got 'eight' (str)"),
])
def test_a_bad_value_names_the_macro_the_field_and_what_is_allowed(received, tmp_path, flag,
                                                                   message):
  with pytest.raises(checkpoints.BadValueError) as e:
    received(flag)
  assert message in str(e.value)
  assert not (tmp_path / "run").exists()  # Nothing created.


def test_configs_check_their_values_when_built_from_python():
  with pytest.raises(checkpoints.BadValueError, match=r"e\.g\. --gin\.CHECKPOINT_PERIOD=8"):
    training.CheckpointConfig(period=-1)
  with pytest.raises(checkpoints.BadValueError,
                     match=r"label_smoothing\) must be a number >= 0.0 and < 1.0, got 1.0"):
    training.OptimizerConfig(label_smoothing=1.0)
  with pytest.raises(checkpoints.BadValueError, match="train_script.train.optimizer_cfg must be "
                     "a training.OptimizerConfig, got 'adamw'"):
    training.TrainConfig("/m", training.DecoderConfig(), "t", {"targets": 8}, 1,
                         optimizer="adamw")
  assert training.OptimizerConfig(loss_normalizing_factor=None).loss_normalizing_factor is None
  assert training.OptimizerConfig(loss_normalizing_factor=2.0).loss_normalizing_factor == 2.0


def test_a_gin_file_binding_a_moved_argument_gets_the_new_name():
  error = ValueError("Configurable 'train_script.train' doesn't have a parameter named 'mesh'.\n"
                     "  In file \"my_run.gin\", line 3")
  assert "train_script.train.mesh is now training.PartitioningConfig.mesh" in (
      entry._config_error_text(error))
  assert gin_utils.moved_train_argument("train_script.train.optimizer") == (
      "training.OptimizerConfig.name")
  assert gin_utils.moved_train_argument("train_script.train.log_period") is None


def test_every_moved_argument_names_a_field_of_its_config():
  classes = {cls.GIN_NAME: cls for cls in training.CONFIG_ARGUMENTS.values()}
  for name, target in gin_utils.MOVED_TRAIN_ARGUMENTS.items():
    configurable, field = target.rsplit(".", 1)
    assert field in classes[configurable].__dataclass_fields__, name
