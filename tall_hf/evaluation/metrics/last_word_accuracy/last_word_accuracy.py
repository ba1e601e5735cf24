"""Last-word accuracy: the share of predicted last words equal to the gold ones after punctuation removal."""

import datasets
import evaluate

from tall_hf.evaluation.scoring import words_match

_DESCRIPTION = """
Word-level exact match for last-word prediction, as in the TALL paper: Unicode punctuation is removed and
whitespace collapsed on both sides before comparison, and an empty prediction never counts as correct.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list[str]`): the predicted last words.
    references (`list[str]`): the gold last words.
Returns:
    accuracy (`float`): share of exact matches, in [0, 1].
    correct (`int`): number of exact matches.
    total (`int`): number of predictions.
Examples:
    >>> metric = evaluate.load(tall_hf.evaluation.last_word_accuracy_path())
    >>> metric.compute(predictions=["בית.", "ספר"], references=["בית", "עט"])
    {'accuracy': 0.5, 'correct': 1, 'total': 2}
"""

_CITATION = """
@article{ofer2025tall,
  title={TALL: A Trainable Architecture for Enhancing LLM Performance in Low-Resource Languages},
  author={Ofer, Moshe and Zamler, Orel and Azaria, Amos},
  year={2025}
}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class LastWordAccuracy(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value("string"), "references": datasets.Value("string")}
            ),
        )

    def _compute(self, predictions, references):
        correct = sum(
            words_match(prediction, reference) for prediction, reference in zip(predictions, references, strict=True)
        )
        total = len(predictions)
        return {"accuracy": correct / total if total else 0.0, "correct": correct, "total": total}
