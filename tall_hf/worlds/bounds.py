"""What a world's components allow, measured on its test sentences: the HR ceiling and the pivot bound.

- **HR ceiling**: the world LLM's own last-word accuracy on the HR form of the test sentences, prompted as the Direct
  approach prompts it on LR text and scored by the evaluation's metric.
- **Back-translation rate**: the share of test sentences whose gold HR sentence, translated back by the world's HR->LR
  translator, ends in the gold LR word. Where the HR language drops what the LR sentence marks (`GenderlessMap`), no
  translator gets the ambiguous sentences right more than about half the time.
- **Pivot bound**: the share of test sentences on which both hold: the LLM's word on the gold HR prefix is the gold HR
  word (it is right on the ceiling), and the gold HR sentence translated back ends in the gold LR word. It is what
  Naive scores with a perfect LR->HR translation (when the LLM is right, the completed HR sentence is the gold one),
  and close to the back-translation rate times the ceiling; an approach that returns through the HR sentence gets
  above it only where the LLM or the translator errs in its favour.
"""

from __future__ import annotations

from dataclasses import replace

from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

from ..data import translate
from ..evaluation.approaches import ApproachContext, DirectApproach
from ..evaluation.report import ApproachResult
from ..evaluation.runner import evaluate_approach
from ..evaluation.scoring import AccuracyEstimate, bootstrap_accuracy, words_match
from ..evaluation.task import make_examples
from ..generation.pivot import last_word

CEILING_NAME, CEILING_DISPLAY = "hr_ceiling", "HR ceiling"
PIVOT_NAME, PIVOT_DISPLAY = "pivot_bound", "Pivot bound"


def hr_ceiling_result(
    components: dict[str, str], hr_sentences: list[str], scratch: str, **evaluation
) -> ApproachResult:
    """The world LLM on `hr_sentences`, as the Direct approach prompts it (`evaluation`: `evaluate_approach`'s
    options), as the `HR ceiling` row."""
    context = ApproachContext(**components, output_dir=scratch)
    direct = DirectApproach.from_context(context)
    direct.display_name = CEILING_DISPLAY  # names its progress bar
    result = evaluate_approach(direct, make_examples(hr_sentences), **evaluation)
    return replace(result, approach=CEILING_NAME, display_name=CEILING_DISPLAY, kind="bound")


def back_translations(hr_lr: str, hr_sentences: list[str], batch_size: int = 64) -> list[str]:
    """`hr_sentences` translated by the HR->LR translator in folder `hr_lr`."""
    model = AutoModelForSeq2SeqLM.from_pretrained(hr_lr).eval()
    return translate(hr_sentences, model, AutoTokenizer.from_pretrained(hr_lr), batch_size=batch_size)


def pivot_bound_result(
    ceiling: ApproachResult, lr_sentences: list[str], back: list[str], **bootstrap
) -> ApproachResult:
    """The `Pivot bound` row: per sentence of `ceiling` (the LLM on the gold HR sentences), right when the LLM was and
    `back` (the gold HR sentence translated back) ends in the gold LR word of `lr_sentences`; the prediction recorded
    is that back-translated word. `bootstrap`: `bootstrap_accuracy`'s options."""
    records = [
        replace(
            record,
            sentence=lr,
            truncated_sentence=lr.rsplit(" ", 1)[0],
            translation=record.sentence,
            prediction=last_word(translated),
            gold_word=last_word(lr),
            correct=record.correct and words_match(last_word(translated), last_word(lr)),
        )
        for record, lr, translated in zip(ceiling.records, lr_sentences, back, strict=True)
    ]
    estimate = bootstrap_accuracy([record.correct for record in records], **bootstrap)
    return ApproachResult(PIVOT_NAME, PIVOT_DISPLAY, ceiling.dataset, records, estimate, kind="bound")


def estimate_facts(estimate: AccuracyEstimate, **extra) -> dict:
    """An estimate as `world.json` stores it."""
    return {
        "accuracy": estimate.accuracy,
        "ci_lower": estimate.lower,
        "ci_upper": estimate.upper,
        "confidence": estimate.confidence,
        "n": estimate.n,
        **extra,
    }


def world_bounds(
    components: dict[str, str], lr_sentences: list[str], hr_sentences: list[str], ambiguous: list[bool], scratch: str
) -> dict:
    """`world.json`'s `ceiling`, `pivot_bound`, `back_translation` and `ambiguity` for the test sentences
    `lr_sentences` (HR forms `hr_sentences`; `ambiguous`: whether each one's last word is ambiguous from HR)."""
    ceiling = hr_ceiling_result(components, hr_sentences, scratch)
    back = back_translations(components["hr_lr"], hr_sentences)
    pivot = pivot_bound_result(ceiling, lr_sentences, back)
    back_correct = [words_match(last_word(b), last_word(lr)) for b, lr in zip(back, lr_sentences, strict=True)]

    def rate(selected: list[bool]) -> float | None:
        chosen = [correct for correct, keep in zip(back_correct, selected, strict=True) if keep]
        return sum(chosen) / len(chosen) if chosen else None

    return {
        "ceiling": estimate_facts(ceiling.estimate, decoding="greedy, as the Direct approach"),
        "pivot_bound": estimate_facts(
            pivot.estimate,
            definition="share of test sentences where the LLM's word on the gold HR prefix is the gold HR word and "
            "the gold HR sentence, translated back by the HR->LR translator, ends in the gold LR word",
        ),
        "back_translation": {
            "last_word_rate": rate([True] * len(back)),
            "last_word_rate_ambiguous": rate(ambiguous),
            "last_word_rate_unambiguous": rate([not a for a in ambiguous]),
            "times_ceiling": rate([True] * len(back)) * ceiling.estimate.accuracy,
        },
        "ambiguity": {"ambiguous": sum(ambiguous), "n": len(ambiguous), "share": sum(ambiguous) / len(ambiguous)},
    }
