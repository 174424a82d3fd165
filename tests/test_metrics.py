"""Tests for flan_jax.metrics. Expected values are worked out by hand in the comments."""

from __future__ import annotations

import functools
import inspect
import math

import numpy as np
import pytest
import sklearn.metrics

from flan_jax import metrics

YES_NO = ("no", "yes")


def _positional(fn) -> tuple[str, ...]:
  """The names seqio uses to tell a metric's type (required positional-or-keyword params)."""
  return tuple(k for k, p in inspect.signature(fn).parameters.items()
               if p.default is inspect.Parameter.empty
               and p.kind == inspect.Parameter.POSITIONAL_OR_KEYWORD)


def _options_for(kind: str):
  return YES_NO if kind in ("f1_binary", "multirc") else None


# ----------------------------------------------------------------------------- registry


def test_metric_kinds_cover_the_brief():
  assert set(metrics.METRIC_KINDS) == {
      "accuracy", "f1_binary", "f1_multiclass", "mcc", "pearson_spearman", "squad", "trivia_qa",
      "multirc", "record", "bleu", "rouge", "edit_distance"}


@pytest.mark.parametrize("kind", metrics.METRIC_KINDS)
def test_metric_fns_are_seqio_prediction_metrics(kind):
  fns = metrics.metric_fns(kind, options=_options_for(kind))
  assert fns
  for fn in fns:
    assert _positional(fn) == ("targets", "predictions")
  pp = metrics.postprocessor(kind)
  assert pp is None or callable(pp)


def test_rank_classification_is_a_seqio_score_metric():
  fn = functools.partial(metrics.rank_classification, num_classes=3)
  assert _positional(fn) == ("targets", "scores")
  assert _positional(metrics.rank_classification) == ("targets", "scores")


def test_unknown_kind_lists_valid_kinds():
  for call in (metrics.metric_fns, metrics.postprocessor):
    with pytest.raises(ValueError, match="Unknown metric kind 'bogus'") as err:
      call("bogus")
    for kind in metrics.METRIC_KINDS:
      assert kind in str(err.value)


@pytest.mark.parametrize("kind", ["f1_binary", "multirc"])
def test_binary_kinds_need_two_options(kind):
  with pytest.raises(ValueError, match="options"):
    metrics.metric_fns(kind)
  with pytest.raises(ValueError, match="options"):
    metrics.metric_fns(kind, options=("a", "b", "c"))


def test_length_mismatch_raises():
  with pytest.raises(ValueError, match="pair up"):
    metrics.accuracy(["a", "b"], ["a"])


# ----------------------------------------------------------------------------- classification


def test_accuracy():
  # 3 of 4 match -> 75.
  (fn,) = metrics.metric_fns("accuracy")
  assert fn(["a", "b", "c", "d"], ["a", "x", "c", "d"]) == {"accuracy": 75.0}


def test_strip_postprocessor():
  pp = metrics.postprocessor("accuracy")
  assert pp(" yes\n", example={}, is_target=False) == "yes"
  assert pp(b"no", is_target=True) == "no"


def test_f1_binary():
  (fn,) = metrics.metric_fns("f1_binary", options=YES_NO)
  # Positive = "yes". TP=1 (row 0), FN=1 (row 1), FP=1 (row 2), TN=1 (row 3).
  # P = 1/2, R = 1/2 -> F1 = 1/2 -> 50; accuracy 2/4 -> 50.
  out = fn(["yes", "yes", "no", "no"], ["yes", "no", "yes", "no"])
  assert out["accuracy"] == pytest.approx(50.0)
  assert out["f1"] == pytest.approx(50.0)


def test_f1_binary_invalid_prediction_counts_as_wrong():
  (fn,) = metrics.metric_fns("f1_binary", options=YES_NO)
  # "maybe" on a "no" target is scored as "yes": TP=1, FP=1, FN=0 -> P=1/2, R=1 -> F1=2/3.
  out = fn(["yes", "no"], ["yes", "maybe"])
  assert out["f1"] == pytest.approx(200 / 3)
  assert out["accuracy"] == pytest.approx(50.0)


def test_f1_binary_rejects_target_outside_options():
  (fn,) = metrics.metric_fns("f1_binary", options=YES_NO)
  with pytest.raises(ValueError, match="not among the options"):
    fn(["true"], ["yes"])


def test_f1_multiclass_macro():
  (fn,) = metrics.metric_fns("f1_multiclass", options=("entailment", "contradiction", "neutral"))
  targets = ["entailment", "entailment", "contradiction", "neutral"]
  preds = ["entailment", "contradiction", "contradiction", "garbage"]
  # entailment:    TP=1 FP=0 FN=1 -> P=1,   R=1/2 -> F1=2/3
  # contradiction: TP=1 FP=1 FN=0 -> P=1/2, R=1   -> F1=2/3
  # neutral:       TP=0 FN=1      -> F1=0 (the invalid prediction is no class's hit)
  # macro = (2/3 + 2/3 + 0) / 3 = 4/9; accuracy = 2/4.
  out = fn(targets, preds)
  assert out["mean_3class_f1"] == pytest.approx(400 / 9)
  assert out["accuracy"] == pytest.approx(50.0)


def test_f1_multiclass_without_options_uses_target_labels():
  (fn,) = metrics.metric_fns("f1_multiclass")
  # Labels {a, b}; all right -> both per-class F1 = 1.
  assert fn(["a", "b"], ["a", "b"])["mean_2class_f1"] == pytest.approx(100.0)


def test_mcc():
  (fn,) = metrics.metric_fns("mcc", options=("unacceptable", "acceptable"))
  t = ["acceptable", "acceptable", "unacceptable", "unacceptable"]
  p = ["acceptable", "unacceptable", "unacceptable", "unacceptable"]
  # TP=1, FN=1, TN=2, FP=0: MCC = (1*2 - 0*1) / sqrt((1+0)(1+1)(2+0)(2+1)) = 2/sqrt(12).
  out = fn(t, p)
  assert out["matthews_corrcoef"] == pytest.approx(100 * 2 / math.sqrt(12))
  assert out["accuracy"] == pytest.approx(75.0)
  assert fn(t, t)["matthews_corrcoef"] == pytest.approx(100.0)


def test_pearson_spearman():
  (fn,) = metrics.metric_fns("pearson_spearman")
  # y = 2x: both correlations are exactly 1.
  out = fn([1.0, 2.0, 3.0, 4.0], [2.0, 4.0, 6.0, 8.0])
  assert out == pytest.approx({"pearson_corrcoef": 100.0, "spearman_corrcoef": 100.0})
  # x = 1,2,3,4 vs y = 1,3,2,4 (already ranks): sum d^2 = 0+1+1+0 = 2,
  # rho = 1 - 6*2 / (4*(16-1)) = 0.8. Pearson on the same values: cov = (1.5*1.5 + 0.5*(-0.5)
  # + (-0.5)*0.5 + 1.5*1.5)/n = 4/n, var = 5/n each -> r = 4/5.
  out = fn([1.0, 2.0, 3.0, 4.0], [1.0, 3.0, 2.0, 4.0])
  assert out == pytest.approx({"pearson_corrcoef": 80.0, "spearman_corrcoef": 80.0})


def test_pearson_spearman_constant_is_nan():
  (fn,) = metrics.metric_fns("pearson_spearman")
  out = fn([1.0, 2.0, 3.0], [2.0, 2.0, 2.0])
  assert math.isnan(out["pearson_corrcoef"]) and math.isnan(out["spearman_corrcoef"])


def test_stsb_postprocessor_parses_floats():
  pp = metrics.postprocessor("pearson_spearman")
  assert pp("3.8") == pytest.approx(3.8)
  assert pp(" 2 ", is_target=True) == pytest.approx(2.0)
  assert pp("very similar") == -1.0


# ----------------------------------------------------------------------------- QA


def test_squad_normalisation():
  assert metrics.normalize_squad("The  Cat!") == "cat"
  assert metrics.normalize_squad("An apple, a pear and THE end.") == "apple pear and end"
  # SQuAD deletes punctuation (underscore included): "the_beatles'" -> "thebeatles".
  assert metrics.normalize_squad("The_Beatles' song") == "thebeatles song"


def test_trivia_qa_normalisation():
  # TriviaQA turns punctuation and underscores into spaces before dropping articles.
  assert metrics.normalize_trivia_qa("The_Beatles' song") == "beatles song"
  assert metrics.normalize_trivia_qa("‘Sgt._Pepper’") == "sgt pepper"


def test_squad_em_f1_max_over_references():
  (fn,) = metrics.metric_fns("squad")
  targets = [["Paris", "the city of Paris"], "cat"]
  preds = ["paris.", "a cat sat"]
  # Row 0: "paris" == "paris" -> EM 1, F1 1.
  # Row 1: ref "cat", pred "cat sat": common 1, P = 1/2, R = 1 -> F1 = 2/3; EM 0.
  out = fn(targets, preds)
  assert out["em"] == pytest.approx(50.0)
  assert out["f1"] == pytest.approx(100 * (1 + 2 / 3) / 2)


def test_squad_f1_no_overlap_is_zero():
  assert metrics.squad(["dog"], ["cat"]) == {"em": 0.0, "f1": 0.0}


def test_trivia_qa_metric_vs_squad():
  (fn,) = metrics.metric_fns("trivia_qa")
  # TriviaQA: "sgt pepper" both sides -> EM 100. SQuAD: "sgtpepper" vs "sgt pepper" -> 0.
  assert fn([["Sgt._Pepper"]], ["sgt pepper"]) == {"em": 100.0, "f1": 100.0}
  assert metrics.squad([["Sgt._Pepper"]], ["sgt pepper"]) == {"em": 0.0, "f1": 0.0}


def test_record_max_over_entities():
  (fn,) = metrics.metric_fns("record")
  # vs "Obama": EM 0, F1 2/3 (P=1/2, R=1); vs "Barack Obama": EM 1, F1 1. The max wins.
  assert fn([["Obama", "Barack Obama"]], ["barack Obama"]) == {"em": 100.0, "f1": 100.0}


def test_qa_postprocessor_uses_answer_list():
  pp = metrics.postprocessor("squad")
  ex = {"answers": np.array([b"Paris", b"the city of Paris"], dtype=object)}
  assert pp("Paris", example=ex, is_target=True) == ["Paris", "the city of Paris"]
  # As t5's postprocessors.qa: the target is always the answer list, whatever the target text.
  assert pp("the capital", example=ex, is_target=True) == ["Paris", "the city of Paris"]
  assert pp(" paris ", example=ex, is_target=False) == " paris "
  assert pp("Paris", example={}, is_target=True) == "Paris"


def test_multirc_grouped():
  (fn,) = metrics.metric_fns("multirc", options=YES_NO)
  targets = [{"group": 1, "value": "yes"}, {"group": 1, "value": "no"},
             {"group": 2, "value": "yes"}, {"group": 2, "value": "yes"}]
  preds = ["yes", "no", "yes", "no"]
  # Over all options: TP=2, FP=0, FN=1 -> P=1, R=2/3 -> F1a = 0.8.
  # Question 1 all right, question 2 not -> EM = 1/2.
  out = fn(targets, preds)
  assert out["f1a"] == pytest.approx(80.0)
  assert out["exact_match"] == pytest.approx(50.0)
  # Plain strings: no grouping, F1a only.
  plain = fn([t["value"] for t in targets], preds)
  assert plain == pytest.approx({"f1a": 80.0})


def test_multirc_postprocessor():
  pp = metrics.postprocessor("multirc")
  assert pp("yes ", example={"group": np.int32(3)}, is_target=True) == {"group": 3, "value": "yes"}
  assert pp("yes", example={}, is_target=True) == "yes"
  assert pp("no", example={"group": np.int32(3)}, is_target=False) == "no"


# ----------------------------------------------------------------------------- generation


def test_bleu_identical_is_100():
  (fn,) = metrics.metric_fns("bleu")
  assert fn(["The cat sat on the mat."], ["The cat sat on the mat."])["bleu"] == pytest.approx(100)


def test_bleu_hand_computed():
  # pred "the cat sat on a mat" vs ref "the cat sat on the mat" (same length -> BP = 1):
  # 1-grams 5/6, 2-grams 3/5 (the cat, cat sat, sat on), 3-grams 2/4, 4-grams 1/3.
  # BLEU = (5/6 * 3/5 * 2/4 * 1/3) ** (1/4) = (1/12) ** 0.25.
  out = metrics.bleu(["the cat sat on the mat"], ["the cat sat on a mat"])
  assert out["bleu"] == pytest.approx(100 * (1 / 12) ** 0.25, abs=1e-6)


def test_rouge_takes_best_reference():
  (fn,) = metrics.metric_fns("rouge")
  # Best ref "the cat sat" vs pred "the cat": ROUGE-1 P=1, R=2/3 -> F=0.8; ROUGE-2 bigrams
  # {the cat} vs {the cat, cat sat}: P=1, R=1/2 -> F=2/3; LCS = 2 -> ROUGE-Lsum = ROUGE-1 = 0.8.
  # The other ref ("a dog ran") shares nothing.
  out = fn([["a dog ran", "the cat sat"]], ["the cat"])
  assert out == pytest.approx({"rouge1": 80.0, "rouge2": 200 / 3, "rougeLsum": 80.0})
  assert fn(["a dog ran"], ["the cat"]) == pytest.approx(
      {"rouge1": 0.0, "rouge2": 0.0, "rougeLsum": 0.0})


def test_rouge_lsum_splits_sentences_at_period():
  # "a b . c d" vs "c d . a b": one sentence per line, each reference sentence is matched whole
  # by one predicted sentence -> union-LCS recall = precision = 4/4 -> rougeLsum = 100
  # (a single-sequence LCS would be 2 of 4 tokens).
  out = metrics.rouge(["c d . a b"], ["a b . c d"])
  assert out["rougeLsum"] == pytest.approx(100.0)


def test_rouge_stemming_switch():
  # Porter stems running -> run and cats -> cat.
  assert metrics.rouge(["run cat"], ["running cats"], use_stemmer=True)["rouge1"] == 100.0
  assert metrics.rouge(["run cat"], ["running cats"], use_stemmer=False)["rouge1"] == 0.0


def test_edit_distance():
  (fn,) = metrics.metric_fns("edit_distance")
  # Lowercased word-level Levenshtein: "cat" -> "dog" is 1 substitution; second row equal.
  out = fn(["the cat sat", "Hello world"], ["the dog sat", "hello world"])
  assert out == {"min_edit": 0.0, "max_edit": 1.0, "mean_edit": 0.5, "median_edit": 0.5,
                 "sum_edit": 1.0}
  # t5's split at every non-word char: "a, b" -> ["a", "", "b"] vs ["a", "b"] -> 1 deletion.
  assert metrics.edit_distance(["a, b"], ["a b"])["sum_edit"] == 1.0


# ----------------------------------------------------------------------------- rank classification


def _rc_rows():
  """3 examples x 3 options: (idx, is_correct) targets and log-likelihood scores, shuffled."""
  rows = [
      # Example 0: best score option 1 (-0.5), the correct one -> right.
      ((0, 0), False, -1.0), ((0, 1), True, -0.5), ((0, 2), False, -3.0),
      # Example 1: two correct options {0, 2}; best is option 0 (-0.2) -> right.
      ((1, 0), True, -0.2), ((1, 1), False, -2.0), ((1, 2), True, -1.0),
      # Example 2: correct option 0, best is option 2 (-0.1) -> wrong.
      ((2, 0), True, -2.0), ((2, 1), False, -1.0), ((2, 2), False, -0.1),
  ]
  order = [4, 8, 0, 2, 6, 1, 7, 3, 5]
  rows = [rows[i] for i in order]
  targets = [(tuple(np.int32(i) for i in idx), np.bool_(c)) for idx, c, _ in rows]
  scores = [s for _, _, s in rows]
  return targets, scores


def test_rank_classification_accuracy_with_multiple_correct():
  targets, scores = _rc_rows()
  # 2 of 3 examples right.
  assert metrics.rank_classification(targets, scores) == pytest.approx({"accuracy": 200 / 3})


def test_rank_classification_macro_f1_with_num_classes():
  targets, scores = _rc_rows()
  # Labels (first correct option) = [1, 0, 0], predictions = [1, 0, 2].
  # class 0: TP=1, FN=1 -> F1=2/3; class 1: TP=1 -> F1=1; class 2: FP=1 -> F1=0. Macro = 5/9.
  out = metrics.rank_classification(targets, scores, num_classes=3)
  assert out == pytest.approx({"accuracy": 200 / 3, "mean_3class_f1": 500 / 9})


def test_rank_classification_binary_reports_positive_f1():
  # Labels [1, 1, 0, 0], predictions [1, 0, 1, 0]: class-1 F1 = 1/2, class-0 F1 = 1/2.
  targets, scores = [], []
  for ex, (label, pred) in enumerate([(1, 1), (1, 0), (0, 1), (0, 0)]):
    for opt in (0, 1):
      targets.append(((ex, opt), opt == label))
      scores.append(0.0 if opt == pred else -1.0)
  out = metrics.rank_classification(targets, scores, num_classes=2)
  assert out == pytest.approx({"accuracy": 50.0, "mean_2class_f1": 50.0, "f1": 50.0,
                               "auc-roc": 50.0, "auc-pr": 50.0})


def test_rank_classification_variable_option_counts():
  # Example 0 has 2 options (picks the correct one), example 1 has 3 (picks a wrong one).
  targets = [((0, 0), True), ((0, 1), False), ((1, 0), False), ((1, 1), True), ((1, 2), False)]
  scores = [-1.0, -2.0, -1.0, -3.0, -2.0]
  assert metrics.rank_classification(targets, scores) == {"accuracy": 50.0}
  with pytest.raises(ValueError, match="num_classes=3"):
    metrics.rank_classification(targets, scores, num_classes=3)


def test_rank_classification_duplicate_idx_raises():
  targets = [((0, 0), True), ((0, 1), False), ((0, 0), True), ((0, 1), False)]
  with pytest.raises(ValueError, match="multi-host"):
    metrics.rank_classification(targets, [0.0, -1.0, 0.0, -1.0])


def test_rank_classification_postprocessor():
  ex = {"idx": np.array([4, 1], np.int32), "is_correct": np.bool_(True)}
  target = metrics.rank_classification_postprocessor("yes", example=ex, is_target=True)
  assert target == ((4, 1), True, 0, 0)
  assert type(target[0][0]) is int and type(target[1]) is bool
  ex.update(targets=np.array([7, 8, 1], np.int32), targets_pretokenized=b"maybe")
  assert metrics.rank_classification_postprocessor("yes", ex, is_target=True) == (
      (4, 1), True, 3, 5)
  assert metrics.rank_classification_postprocessor(-1.5, example=ex, is_target=False) == -1.5


def test_rank_classification_length_normalisations():
  # Example 0: "a" (1 token, 1 char, correct) -3.0 vs "bbbbbb" (4 tokens, 6 chars) -4.0.
  #   sum: option 0 (-3 > -4) right; per token: -3 vs -1 -> option 1 wrong; per char: -3 vs -0.67
  #   -> option 1 wrong.
  # Example 1: "cc" (2 tok, 2 ch) -2.0 vs "d" (1 tok, 8 ch, correct) -1.5.
  #   sum: option 1 right; per token: -1 vs -1.5 -> option 0 wrong; per char: -1 vs -0.19 right.
  targets = [((0, 0), True, 1, 1), ((0, 1), False, 4, 6),
             ((1, 0), False, 2, 2), ((1, 1), True, 1, 8)]
  scores = [-3.0, -4.0, -2.0, -1.5]
  assert metrics.rank_classification(targets, scores) == pytest.approx(
      {"accuracy": 100.0, "accuracy_per_token": 0.0, "accuracy_per_char": 50.0})


@pytest.mark.parametrize("num_classes", [None, 2])
def test_rank_classification_ties_go_to_the_first_option_as_t5(num_classes):
  """t5 ranks in float32 and np.argmax takes the first maximum: options whose normalised scores
  are equal up to float64 rounding (-0.1 / 1 vs -0.3 / 3 = -0.09999999999999999) tie and option
  0 wins. Both examples are exact ties; option 0 is the correct one in each."""
  targets = [((0, 0), True, 1, 1), ((0, 1), False, 3, 3),
             ((1, 0), True, 1, 1), ((1, 1), False, 2, 2)]
  scores = [-0.1, -0.3, -2.0, -4.0]
  out = metrics.rank_classification(targets, scores, num_classes=num_classes)
  assert out["accuracy_per_token"] == out["accuracy_per_char"] == 100.0  # was 50.0
  f32 = np.float32
  # Unnormalised float32 scores that round to one value tie too.
  out = metrics.rank_classification([((0, 0), True), ((0, 1), False)],
                                    [float(f32(-1.0)), float(f32(-1.0)) + 1e-12])
  assert out["accuracy"] == 100.0


# ----------------------------------------------------------------------------- t5's own test values
# The expected numbers below are the ones in t5/evaluation/metrics_test.py (t5.evaluation.metrics
# is what FLAN's numbers were computed with).


def _t5_rows(rows):
  """t5 test rows ((example, option), is_correct, weight=1) -> our (idx, is_correct) targets."""
  return [(idx, correct) for idx, correct, _ in rows]


def test_rank_classification_t5_two_classes_auc():
  rows = [((0, 0), True, 1.0), ((0, 1), False, 1.0), ((1, 0), False, 1.0), ((1, 1), True, 1.0),
          ((2, 0), True, 1.0), ((2, 1), False, 1.0), ((3, 0), True, 1.0), ((3, 1), False, 1.0)]
  scores = [0.1, 0.5, 1.0, 1.1, 0.3, 0.1, 0.6, 0.5]
  out = metrics.rank_classification(_t5_rows(rows), scores, num_classes=2)
  t5_expected = {"accuracy": 75.0, "auc-pr": 50.0, "auc-roc": 66.6666667, "f1": 66.6666667}
  assert {k: out[k] for k in t5_expected} == pytest.approx(t5_expected)


def test_rank_classification_t5_three_classes():
  rows = [((0, 0), False, 1.0), ((0, 1), True, 1.0), ((0, 2), False, 1.0),
          ((1, 0), True, 1.0), ((1, 1), False, 1.0), ((1, 2), False, 1.0),
          ((2, 0), False, 1.0), ((2, 1), False, 1.0), ((2, 2), True, 1.0)]
  scores = [0.1, 0.5, 0.0, -2, -1, -3, 3.0, 3.1, 3.2]
  out = metrics.rank_classification(_t5_rows(rows), scores, num_classes=3)
  assert out == pytest.approx({"accuracy": 66.6666667, "mean_3class_f1": 55.5555556})
  assert "auc-roc" not in out  # t5: AUC only for two classes


def test_rank_classification_auc_undefined_with_one_class():
  out = metrics.rank_classification([((0, 0), True), ((0, 1), False)], [0.0, -1.0],
                                    num_classes=2)
  assert math.isnan(out["auc-roc"]) and math.isnan(out["auc-pr"])


def test_mcc_t5_value():
  # t5's sklearn_metrics_wrapper("matthews_corrcoef") test: y_true [0, 0, 2, 1], y_pred
  # [0, 1, 2, 1] -> 70.
  (fn,) = metrics.metric_fns("mcc", options=("zero", "one", "two"))
  names = ("zero", "one", "two")
  out = fn([names[i] for i in (0, 0, 2, 1)], [names[i] for i in (0, 1, 2, 1)])
  assert out["matthews_corrcoef"] == pytest.approx(70.0)


def test_mcc_invalid_predictions_are_one_extra_class():
  # CoLA-like: 10 examples, 2 invalid predictions (20 %). t5 maps every invalid prediction to -1
  # (string_label_to_class_id) and calls sklearn's matthews_corrcoef on the class ids.
  (fn,) = metrics.metric_fns("mcc", options=("unacceptable", "acceptable"))
  ids = {"unacceptable": 0, "acceptable": 1}
  t = ["acceptable"] * 6 + ["unacceptable"] * 4
  p = (["acceptable"] * 4 + ["I think so", "unacceptable"] + ["unacceptable"] * 3
       + ["hmm, hard to say"])
  t5_value = 100 * sklearn.metrics.matthews_corrcoef(
      [ids[x] for x in t], [ids.get(x, -1) for x in p])
  out = fn(t, p)
  assert out["matthews_corrcoef"] == pytest.approx(t5_value)
  # The two different invalid strings are the same class: renaming one changes nothing.
  p2 = [x if x != "hmm, hard to say" else "I think so" for x in p]
  assert fn(t, p2)["matthews_corrcoef"] == pytest.approx(t5_value)
  # Scoring an invalid prediction as the opposite label (the old rule) gives another number.
  flipped = [x if x in ids else ("unacceptable" if y == "acceptable" else "acceptable")
             for x, y in zip(p, t, strict=True)]
  assert abs(fn(t, flipped)["matthews_corrcoef"] - t5_value) > 5


def test_none_prediction_is_an_error():
  for kind in ("accuracy", "squad", "mcc"):
    (fn,) = metrics.metric_fns(kind, options=("no", "yes") if kind == "mcc" else None)
    with pytest.raises(ValueError, match="None"):
      fn(["yes"], [None])
  with pytest.raises(ValueError, match="None"):
    metrics.strip_postprocessor(None)
