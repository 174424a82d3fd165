"""flan_jax as an lm-evaluation-harness model type (``flan_jax``): a faster backend than ``HFLM``.

    flan-jax lm-eval --model_dir DIR --tasks arc_easy            # or, from Python:
    import lm_eval, flan_jax.evaluation.lm_eval
    lm_eval.simple_evaluate(model="flan_jax", model_args="pretrained=DIR", tasks=["arc_easy"])
    lm = flan_jax.evaluation.lm_eval.FlanJaxLM(model=flan_jax.load(DIR))
    lm_eval.simple_evaluate(model=lm, ...)

``DIR`` is anything :func:`flan_jax.load` reads: a flan_jax model directory (or one of its
``checkpoint_<step>`` dirs), an ``import-hf`` output or a Hugging Face Llama directory.

- ``loglikelihood``: requests are tokenized as lm-eval's ``HFLM`` does (see
  :meth:`flan_jax.inference.interactive.Model.encode_pair`), then all requests sharing a context
  are scored
  with the context encoded once (:func:`flan_jax.inference.scoring.score_items`, KV-cache
  broadcast),
  ``batch_size`` contexts per call. Returns ``(sum log p, is_greedy)`` like ``HFLM``.
- ``loglikelihood_rolling``: lm-eval's own disjoint rolling windows
  (``lm_eval.utils.get_rolling_token_windows``), all windows scored in batches.
- ``generate_until``: KV-cache decoding (:func:`flan_jax.inference.decoding.decode`), greedy unless
the
  task asks for ``do_sample``; stop sequences cut as lm-eval does (``postprocess_generated_text``).

Prefix-LM (FLAN / t5x decoder-only) models: lm-eval's causal framing scores ``context +
continuation`` as one string split after the context; here the context (after seqio's start token
0) is read bidirectionally, as the model was trained, but there is no EOS after the context and
none after the continuation, unlike ``flan-jax eval``'s seqio layout. Numbers are therefore
comparable across lm-eval backends for the same model, not to ``flan-jax eval`` or the paper.

This module is ``flan_jax.evaluation.lm_eval``; its ``import lm_eval`` lines are absolute imports of
the
lm-evaluation-harness package (``pip install 'flan_jax[lm_eval]'``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import jax
from lm_eval import utils as lm_utils
from lm_eval.api.model import TemplateLM
from lm_eval.api.registry import register_model
from lm_eval.models.utils import (
  handle_stop_sequences,
  normalize_gen_kwargs,
  postprocess_generated_text,
)

from flan_jax.parallel import partitioning

DEFAULT_MAX_LENGTH = 2048  # lm-eval's HFLM default when a model declares no length.


@register_model("flan_jax", "flan-jax")
class FlanJaxLM(TemplateLM):
  """lm-eval ``LM`` over a :class:`flan_jax.inference.interactive.Model`.

  Args:
    pretrained: a model directory for :func:`flan_jax.load` (``model_dir`` is an alias).
    model: an already loaded :class:`~flan_jax.inference.interactive.Model` (instead of
    ``pretrained``).
    batch_size: contexts per scoring call / prompts per generation call.
    dtype: compute dtype override (HF directories default to float32).
    max_length: lm-eval's maximum length (default: the model's ``max_position_embeddings``, else
      2048 as ``HFLM``); longer requests are truncated from the left.
    max_gen_toks: default generation budget (``HFLM``: 256).
    mesh: the device mesh (``flan-jax eval``'s ``data=-1,model=1`` syntax) the parameters are
      placed on (:func:`flan_jax.parallel.partitioning.param_shardings`, rules
      ``partitioning_rules``);
      every scoring / generation batch is then padded and sharded over its data axes
      (:func:`flan_jax.parallel.partitioning.place_batch_like`). Default: all local devices
      data-parallel;
      ``mesh=none`` keeps one device. In lm-eval's comma-separated ``model_args`` separate the
      axes with ``;`` (``mesh=data=2;model=1``).
  """

  def __init__(self, pretrained: str | None = None, model: Any = None, model_dir: str | None = None,
               batch_size: int | str = 8, dtype: str | None = None, max_length: int | None = None,
               max_gen_toks: int = 256, mesh: str | None = "data=-1,model=1",
               partitioning_rules: str = "1d", **kwargs: Any):
    super().__init__()
    from flan_jax.inference import interactive
    path = pretrained or model_dir
    if (model is None) == (path is None):
      raise ValueError("FlanJaxLM needs exactly one of pretrained=DIR (or model_dir=DIR) and "
                       "model=flan_jax.load(DIR)")
    batch = 8 if str(batch_size).startswith("auto") else int(batch_size)
    if model is None:
      model = interactive.load(path, dtype=dtype, batch_size=batch)
    else:
      model.batch_size = batch
    if max_length is not None:
      model.max_length = int(max_length)
    elif model.max_length is None:
      model.max_length = DEFAULT_MAX_LENGTH
    self.mesh = None
    if mesh and str(mesh).lower() != "none" and jax.device_count() > 1:
      self.mesh = partitioning.create_mesh(str(mesh).replace(";", ","))  # model_args split ','.
      rules = partitioning.logical_axis_rules(partitioning_rules, self.mesh.axis_names)
      model.params = jax.device_put(
          model.params, partitioning.param_shardings(model.config, self.mesh, rules))
    self.model = model
    self._max_gen_toks = int(max_gen_toks)
    self.ignored_args = sorted(kwargs)  # lm-eval passes device etc.; a single host here.

  # --- lm-eval's model interface -------------------------------------------------------------

  @property
  def eot_token_id(self) -> int:
    return self.model.eos_id

  @property
  def prefix_token_id(self) -> int:
    return self.model.prefix_token_id

  @property
  def max_length(self) -> int:
    return self.model.max_length

  @property
  def max_gen_toks(self) -> int:
    return self._max_gen_toks

  @property
  def batch_size(self) -> int:
    return self.model.batch_size

  def tok_encode(self, string: str, add_special_tokens: bool | None = None,
                 **kwargs: Any) -> list[int]:
    return self.model.encode(string, add_special_tokens)

  def tok_decode(self, tokens: Sequence[int], skip_special_tokens: bool = True) -> str:
    if isinstance(tokens, int):
      tokens = [tokens]
    if self.model.tokenizer is not None:
      return self.model.tokenizer.decode(list(tokens), skip_special_tokens=skip_special_tokens)
    return self.model.decode(tokens)

  def loglikelihood(self, requests, disable_tqdm: bool = False) -> list[tuple[float, bool]]:
    args = [req.args for req in requests]
    results = self.model.loglikelihood(args)
    for arg, result in zip(args, results, strict=True):
      self.cache_hook.add_partial("loglikelihood", arg, result)
    return results

  def _loglikelihood_tokens(self, requests, disable_tqdm: bool = False, **kwargs: Any
                            ) -> list[tuple[float, bool]]:
    return self.model.loglikelihood_tokens([(ctx, cont) for _, ctx, cont in requests])

  def loglikelihood_rolling(self, requests, disable_tqdm: bool = False) -> list[float]:
    windows, owners = [], []
    for index, (string,) in enumerate(req.args for req in requests):
      for window in lm_utils.get_rolling_token_windows(
          token_list=self.tok_encode(string), prefix_token=self.prefix_token_id,
          max_seq_len=self.max_length, context_len=1):
        windows.append(lm_utils.make_disjoint_window(window))
        owners.append(index)
    scores = self.model.loglikelihood_tokens(windows) if windows else []
    totals = [0.0] * len(requests)
    for owner, (score, _) in zip(owners, scores, strict=True):
      totals[owner] += score
    for req, total in zip(requests, totals, strict=True):
      self.cache_hook.add_partial("loglikelihood_rolling", req.args, total)
    return totals

  def generate_until(self, requests, disable_tqdm: bool = False) -> list[str]:
    groups: dict[str, list[int]] = {}
    for index, req in enumerate(requests):
      groups.setdefault(json.dumps(req.args[1], sort_keys=True, default=str), []).append(index)
    eos = self.tok_decode([self.eot_token_id], skip_special_tokens=False)
    out: list[str | None] = [None] * len(requests)
    for indices in groups.values():
      kwargs = normalize_gen_kwargs(dict(requests[indices[0]].args[1]), self.max_gen_toks)
      until = handle_stop_sequences(kwargs.pop("until", None), eos=eos)
      max_new = int(kwargs.pop("max_gen_toks"))
      sample = bool(kwargs.pop("do_sample", False)) and float(kwargs.get("temperature", 0)) > 0
      options = {"method": "sample", "temperature": float(kwargs["temperature"])} if sample else {}
      # Longest prompts first (lm-eval's order), batch_size prompts a call.
      indices = sorted(indices, key=lambda i: -len(self.tok_encode(requests[i].args[0])))
      for start in range(0, len(indices), self.batch_size):
        chunk = indices[start:start + self.batch_size]
        texts = self.model.generate([requests[i].args[0] for i in chunk], max_new_tokens=max_new,
                                    **options)
        for i, text in zip(chunk, texts, strict=True):
          out[i] = postprocess_generated_text(text, until, None)
          self.cache_hook.add_partial("generate_until", requests[i].args, out[i])
    return out  # type: ignore[return-value]


def main(argv: Sequence[str] | None = None) -> int:
  """``flan-jax lm-eval --model_dir DIR --tasks T[,T2] [--include_path YAML_DIR]``."""
  import argparse

  import lm_eval
  from lm_eval.tasks import TaskManager
  parser = argparse.ArgumentParser(prog="flan-jax lm-eval",
                                   description="lm-evaluation-harness tasks on a flan_jax model")
  parser.add_argument("--model_dir", required=True,
                      help="flan_jax model dir, checkpoint_<step> dir, import-hf output or HF dir")
  parser.add_argument("--tasks", required=True, help="comma-separated lm-eval task names")
  parser.add_argument("--include_path", default=None, help="a directory of extra task YAMLs")
  parser.add_argument("--batch_size", type=int, default=8)
  parser.add_argument("--num_fewshot", type=int, default=None)
  parser.add_argument("--limit", type=float, default=None)
  parser.add_argument("--dtype", default=None)
  parser.add_argument("--max_length", type=int, default=None)
  parser.add_argument("--mesh", default="data=-1,model=1",
                      help="device mesh the batches are sharded over ('none': one device)")
  parser.add_argument("--output_path", default=None, help="write the results JSON here")
  parser.add_argument("--log_samples", action="store_true")
  args = parser.parse_args(argv)
  from flan_jax.storage import fs
  if not fs.isdir(args.model_dir):
    parser.error(f"--model_dir {args.model_dir} is not a directory")
  lm = FlanJaxLM(pretrained=args.model_dir, batch_size=args.batch_size, dtype=args.dtype,
                 max_length=args.max_length, mesh=args.mesh)
  task_manager = TaskManager(include_path=args.include_path)
  tasks = [t for t in args.tasks.split(",") if t]
  unknown = [t for t in tasks if t not in task_manager.all_tasks]
  if unknown:
    parser.error(f"unknown lm-eval task(s) {unknown}; see `lm_eval ls tasks` or pass "
                 "--include_path with their YAML files")
  results = lm_eval.simple_evaluate(model=lm, tasks=tasks, num_fewshot=args.num_fewshot,
                                    limit=args.limit, task_manager=task_manager,
                                    log_samples=args.log_samples)
  from lm_eval.utils import make_table
  print(make_table(results))
  if args.output_path:
    fs.write_text(args.output_path, json.dumps(results, indent=2, default=str))
  return 0
