"""Natural language inference: ANLI (R1-R3), CB, MNLI (matched/mismatched), QNLI, RTE, SNLI, WNLI.

Label orders (``tfds.builder(name).info.features["label"].names``) all line up with the option
orders FLAN renders, so ``pick(OPTIONS, label)`` maps labels to option text directly:

- anli/r1..r3 (e, n, c): Yes / It's impossible to say / No
- super_glue/cb (entailment, contradiction, neutral): Yes / No / It's impossible to say
- glue/mnli, snli (entailment, neutral, contradiction): yes / it is not possible to tell / no
- glue/qnli, super_glue/rte (entailment, not_entailment): yes / no
- glue/wnli (not_entailment, entailment): no / yes

Turned-around templates ask for a sentence with a given relation to the text; the ``relation``
field states that relation in words for the example's label, so the target is always correct.
"""

from flan_jax.data.preprocessors import pick
from flan_jax.data.spec import DatasetSpec, register_dataset, tfds_source
from flan_jax.data.templates import T, turned

CLUSTER = "nli"
SUBCLUSTER = "entailment"
YES_NO = ("yes", "no")
NO_YES = ("no", "yes")
NLI_FIELDS = ("premise", "hypothesis", "relation", "answer")

# Relations in label order, for the turned-around templates.
TWO_WAY_RELATIONS = ("true", "not necessarily true")
THREE_WAY_RELATIONS = ("definitely true", "neither confirmed nor ruled out", "definitely false")

# --------------------------------------------------------------------------------------- ANLI

ANLI_OPTIONS = ("Yes", "It's impossible to say", "No")

ANLI_TEMPLATES = (
    T("{premise}\n\nGiven the paragraph above, can we say that \"{hypothesis}\"?\n\n{options_}"),
    T("Passage:\n{premise}\n\nStatement: {hypothesis}\n\nIs the statement true according to the "
      "passage?\n\n{options_}"),
    T("Read the text and decide whether the sentence after it is true.\n\n{premise}\n\n"
      "Sentence: {hypothesis}\n\n{options_}"),
    T("Context: {premise}\nHypothesis: {hypothesis}\n\nDoes the context make the hypothesis "
      "true?\n\n{options_}"),
    T("{premise}\n\nBased only on this, is the following sentence true?\n{hypothesis}\n\n"
      "{options_}"),
    T("Here is some background information:\n{premise}\n\nSomeone claims: \"{hypothesis}\"\n"
      "Is the claim backed up by the information?\n\n{options_}"),
    T("Assume everything in the following text is accurate.\n\n{premise}\n\nDoes it then follow "
      "that \"{hypothesis}\"?\n\n{options_}"),
    T("{premise}\n\nQ: Does the text support the conclusion \"{hypothesis}\"?\n\n{options_}"),
    T("Text: {premise}\n\nWould it be correct to infer the following from the text?\n"
      "{hypothesis}\n\n{options_}"),
    turned("{premise}\n\nWrite a sentence that, judging only by the text above, is {relation}.",
           "{hypothesis}"),
)


def _anli_fields(ex):
  return {"premise": ex["context"], "hypothesis": ex["hypothesis"],
          "relation": pick(THREE_WAY_RELATIONS, ex["label"]),
          "answer": pick(ANLI_OPTIONS, ex["label"])}


for _round, _train in (("r1", "train"), ("r2", "train[:30000]"), ("r3", "train[:30000]")):
  register_dataset(DatasetSpec(
      name=f"anli_{_round}",
      cluster=CLUSTER,
      display_name=f"ANLI {_round.upper()}",
      subcluster=SUBCLUSTER,
      # R1 has ~17k training examples, so it takes the whole split (no 30k cap).
      source=tfds_source(f"anli/{_round}:0.1.0", train=_train, validation="validation[:200]",
                         test="test"),
      fields=NLI_FIELDS,
      preprocess=_anli_fields,
      options=ANLI_OPTIONS,
      metric="accuracy",
      continuations=(T("{premise}\nClaim: {hypothesis}\nThe claim is"),),
      continuation_options=("true", "neither", "false"),
      templates=ANLI_TEMPLATES,
  ))

# ----------------------------------------------------------------------------------------- CB

CB_OPTIONS = ("Yes", "No", "It's impossible to say")

CB_TEMPLATES = (
    T("{premise}\n\nFrom the passage above, is it true that \"{hypothesis}\"?\n\n{options_}"),
    T("Premise: {premise}\nHypothesis: {hypothesis}\n\n"
      "If we accept the premise, are we forced to accept the hypothesis?\n\n{options_}"),
    T("{premise}\n\nDoes the speaker believe that {hypothesis}?\n\n{options_}"),
    T("Read this excerpt:\n{premise}\n\nCan we tell from it that {hypothesis}?\n\n{options_}"),
    T("Decide whether the claim is supported by the passage.\n\nPassage: {premise}\n"
      "Claim: {hypothesis}\n\n{options_}"),
    T("{premise}\n\nIf everything said above is true, must \"{hypothesis}\" also be true?\n\n"
      "{options_}"),
    T("Here is part of a conversation or story: {premise}\n\nQuestion: {hypothesis}? Answer "
      "according to the text.\n\n{options_}"),
    T("Text: {premise}\n\nIs the following sentence a fair conclusion from the text?\n"
      "{hypothesis}\n\n{options_}"),
    T("{premise}\n\nQ: According to this, is it the case that {hypothesis}?\n\n{options_}"),
    turned("Read the passage and write a sentence that is {relation} given what it says.\n\n"
           "{premise}", "{hypothesis}"),
)

CB_RELATIONS = ("definitely true", "definitely false", "neither confirmed nor ruled out")


def _cb_fields(ex):
  return {"premise": ex["premise"], "hypothesis": ex["hypothesis"],
          "relation": pick(CB_RELATIONS, ex["label"]),
          "answer": pick(CB_OPTIONS, ex["label"])}


register_dataset(DatasetSpec(
    name="cb",
    cluster=CLUSTER,
    display_name="CB",
    subcluster=SUBCLUSTER,
    source=tfds_source("super_glue/cb:1.0.2", train="train[:-50]", validation="train[-50:]",
                       test="validation"),
    fields=NLI_FIELDS,
    preprocess=_cb_fields,
    options=CB_OPTIONS,
    metric="f1_multiclass",
    continuations=(T("{premise}\nClaim: {hypothesis}\nThe claim is"),),
    continuation_options=("true", "false", "neither"),
    templates=CB_TEMPLATES,
))

# ------------------------------------------------------------------------------- MNLI and SNLI

THREE_WAY_OPTIONS = ("yes", "it is not possible to tell", "no")

MNLI_TEMPLATES = (
    T("Premise: {premise}\nHypothesis: {hypothesis}\n\n"
      "Given the premise, must the hypothesis hold?\n\n{options_}"),
    T("{premise}\n\nIf the sentence above is true, is \"{hypothesis}\" true as well?\n\n"
      "{options_}"),
    T("Sentence A: {premise}\nSentence B: {hypothesis}\n\nDoes sentence A imply sentence B?\n\n"
      "{options_}"),
    T("{premise}\n\nDoes this tell us that \"{hypothesis}\"?\n\n{options_}"),
    T("Suppose this is true: {premise}\n\nWould it follow that \"{hypothesis}\"?\n\n{options_}"),
    T("Figure out whether the second statement is a logical consequence of the first.\n\n"
      "First statement: {premise}\nSecond statement: {hypothesis}\n\n{options_}"),
    T("{premise}\n\nQ: Given this, can we say \"{hypothesis}\"?\n\n{options_}"),
    T("Someone says: \"{premise}\"\nSomeone else concludes: \"{hypothesis}\"\n\nIs that "
      "conclusion justified?\n\n{options_}"),
    T("Here is a premise:\n{premise}\n\nAnd a hypothesis:\n{hypothesis}\n\nIf the premise is "
      "correct, is the hypothesis correct too?\n\n{options_}"),
    T("{premise}\n{hypothesis}\n\nIs the second sentence supported by the first?\n\n{options_}"),
)


def _three_way_fields(ex):
  return {"premise": ex["premise"], "hypothesis": ex["hypothesis"],
          "relation": pick(THREE_WAY_RELATIONS, ex["label"]),
          "answer": pick(THREE_WAY_OPTIONS, ex["label"])}


for _name, _test in (("matched", "validation_matched"), ("mismatched", "validation_mismatched")):
  register_dataset(DatasetSpec(
      name=f"mnli_{_name}",
      cluster=CLUSTER,
      display_name=f"MNLI ({_name})",
      subcluster=SUBCLUSTER,
      source=tfds_source("glue/mnli:2.0.0", train="train[:30000]", validation="train[-200:]",
                         test=_test),
      fields=NLI_FIELDS,
      preprocess=_three_way_fields,
      options=THREE_WAY_OPTIONS,
      metric="accuracy",
      templates=MNLI_TEMPLATES,
  ))

SNLI_TEMPLATES = (
    T("Premise: {premise}\nHypothesis: {hypothesis}\n\nCan the hypothesis be concluded from the "
      "premise?\n\n{options_}"),
    T("A photo is described as: \"{premise}\"\n\nDoes that mean \"{hypothesis}\"?\n\n{options_}"),
    T("{premise}\n\nDoes that make \"{hypothesis}\" right?\n\n{options_}"),
    T("Description: {premise}\nStatement: {hypothesis}\n\nIs the statement true if the description "
      "is accurate?\n\n{options_}"),
    T("Look at these two sentences.\n{premise}\n{hypothesis}\n\nDoes the first one entail the "
      "second one?\n\n{options_}"),
    T("Given the scene \"{premise}\", can we conclude that \"{hypothesis}\"?\n\n{options_}"),
    T("{premise}\n\nQ: Does the sentence below follow from the one above?\n{hypothesis}\n\n"
      "{options_}"),
    T("Decide whether the hypothesis is implied by the premise.\n\nPremise: {premise}\n\n"
      "Hypothesis: {hypothesis}\n\n{options_}"),
    T("If \"{premise}\" is a true description, then is \"{hypothesis}\" also true?\n\n"
      "{options_}"),
    turned("Here is a caption of a scene: {premise}\n\nWrite a sentence about the scene that is "
           "{relation}.", "{hypothesis}"),
)

register_dataset(DatasetSpec(
    name="snli",
    cluster=CLUSTER,
    display_name="SNLI",
    subcluster=SUBCLUSTER,
    source=tfds_source("snli:1.1.0", train="train[:30000]", validation="validation[:200]",
                       test="test"),
    fields=NLI_FIELDS,
    preprocess=_three_way_fields,
    options=THREE_WAY_OPTIONS,
    metric="accuracy",
    # Label -1: the annotators reached no consensus (no gold label).
    filter_fn=lambda ex: ex["label"] >= 0,
    templates=SNLI_TEMPLATES,
))

# --------------------------------------------------------------------------------------- QNLI

QNLI_TEMPLATES = (
    T("Question: \"{question}\"\nCandidate reply: \"{sentence}\"\n\n"
      "Does the reply settle the question?\n\n{options_}"),
    T("Question: {question}\nSentence: {sentence}\n\nDoes the sentence contain the answer to the "
      "question?\n\n{options_}"),
    T("{question}\n\nWould \"{sentence}\" serve as a reply to that?\n\n{options_}"),
    T("Check whether this sentence answers the question.\n\nQ: {question}\nSentence: {sentence}"
      "\n\n{options_}"),
    T("Sentence: {sentence}\n\nCould someone answer \"{question}\" using only this sentence?\n\n"
      "{options_}"),
    T("I am looking for the answer to \"{question}\". Does the following sentence give it?\n"
      "{sentence}\n\n{options_}"),
    T("{sentence}\n\nDoes the text above tell us the answer to this question: {question}\n\n"
      "{options_}"),
    T("Here is a question and a candidate answer.\n\nQuestion: {question}\nCandidate: "
      "{sentence}\n\nIs the candidate an actual answer?\n\n{options_}"),
    T("Q: {question}\nA: {sentence}\n\nDoes the answer respond to the question?\n\n{options_}"),
    turned("{sentence}\n\nWrite a question that the sentence above {relation}.", "{question}"),
)

QNLI_RELATIONS = ("answers", "is related to but does not answer")


def _qnli_fields(ex):
  return {"question": ex["question"], "sentence": ex["sentence"],
          "relation": pick(QNLI_RELATIONS, ex["label"]),
          "answer": pick(YES_NO, ex["label"])}


register_dataset(DatasetSpec(
    name="qnli",
    cluster=CLUSTER,
    display_name="QNLI",
    subcluster=SUBCLUSTER,
    source=tfds_source("glue/qnli:2.0.0", train="train[:30000]", validation="train[-200:]",
                       test="validation"),
    fields=("question", "sentence", "relation", "answer"),
    preprocess=_qnli_fields,
    options=YES_NO,
    metric="accuracy",
    templates=QNLI_TEMPLATES,
))

# ---------------------------------------------------------------------------------------- RTE

RTE_TEMPLATES = (
    T("{premise}\n\nBased on the paragraph above, is it true that \"{hypothesis}\"?\n\n{options_}"),
    T("Read this text:\n{premise}\n\nDoes the text tell us the following?\n{hypothesis}\n\n"
      "{options_}"),
    T("Premise: {premise}\nHypothesis: {hypothesis}\n\nIf the premise holds, must the hypothesis "
      "hold too?\n\n{options_}"),
    T("{premise}\n\nQuestion: does this mean that \"{hypothesis}\" is correct?\n\n{options_}"),
    T("Decide whether the second sentence follows from the first.\n\nFirst: {premise}\n"
      "Second: {hypothesis}\n\n{options_}"),
    T("Here is a short passage: {premise}\n\nCan we infer the claim below from it?\n"
      "{hypothesis}\n\n{options_}"),
    T("Given that \"{premise}\", is the statement \"{hypothesis}\" true?\n\n{options_}"),
    T("Someone wrote: {premise}\n\nA reader concludes: {hypothesis}\nIs the reader right to "
      "conclude that?\n\n{options_}"),
    T("Check the claim against the text.\nText: {premise}\nClaim: {hypothesis}\n"
      "Is the claim supported?\n\n{options_}"),
    turned("{premise}\n\nWrite a sentence that is {relation} according to the text above.",
           "{hypothesis}"),
)


def _rte_fields(ex):
  return {"premise": ex["premise"], "hypothesis": ex["hypothesis"],
          "relation": pick(TWO_WAY_RELATIONS, ex["label"]),
          "answer": pick(YES_NO, ex["label"])}


register_dataset(DatasetSpec(
    name="rte",
    cluster=CLUSTER,
    display_name="RTE",
    subcluster=SUBCLUSTER,
    source=tfds_source("super_glue/rte:1.0.2", train="train[:-200]", validation="train[-200:]",
                       test="validation"),
    fields=NLI_FIELDS,
    preprocess=_rte_fields,
    options=YES_NO,
    metric="accuracy",
    continuations=(T("{premise}\nClaim: {hypothesis}\nThe claim is"),),
    continuation_options=("true", "false"),
    templates=RTE_TEMPLATES,
))

# --------------------------------------------------------------------------------------- WNLI

WNLI_TEMPLATES = (
    T("{premise}\n\nTaking that as given, would \"{hypothesis}\" also hold?\n\n{options_}"),
    T("First: {premise}\nSecond: {hypothesis}\n\n"
      "Assuming the first holds, does the second hold as well?\n\n{options_}"),
    T("Read the sentence and work out who the pronoun refers to.\n{premise}\n\nGiven that, is it "
      "right that \"{hypothesis}\"?\n\n{options_}"),
    T("{premise}\n\nCan we conclude the following from this sentence?\n{hypothesis}\n\n"
      "{options_}"),
    T("First: {premise}\nSecond: {hypothesis}\n\nDoes the second sentence follow from the first?"
      "\n\n{options_}"),
    T("Given the text \"{premise}\", is \"{hypothesis}\" a correct reading of it?\n\n{options_}"),
    T("{premise}\n\nAfter reading the sentence above, would you agree with this statement? "
      "{hypothesis}\n\n{options_}"),
    T("Here is a sentence:\n{premise}\n\nHere is a rewording that replaces a pronoun:\n"
      "{hypothesis}\n\nDoes the rewording keep the original meaning?\n\n{options_}"),
    T("Is the statement \"{hypothesis}\" entailed by the text below?\n\n{premise}\n\n{options_}"),
    T("{premise}\n{hypothesis}\n\nIs the second sentence a valid inference from the first?\n\n"
      "{options_}"),
)


def _wnli_fields(ex):
  return {"premise": ex["sentence1"], "hypothesis": ex["sentence2"],
          "answer": pick(NO_YES, ex["label"])}


register_dataset(DatasetSpec(
    name="wnli",
    cluster=CLUSTER,
    display_name="WNLI",
    subcluster=SUBCLUSTER,
    source=tfds_source("glue/wnli:2.0.0", train="train[:-30]", validation="train[-30:]",
                       test="validation"),
    fields=("premise", "hypothesis", "answer"),
    preprocess=_wnli_fields,
    options=NO_YES,
    metric="accuracy",
    templates=WNLI_TEMPLATES,
))
