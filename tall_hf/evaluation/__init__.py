"""Evaluation of last-word prediction: the paper's six approaches and Naive with the LR prefix forced, its metric, and a Table-1-shaped report."""

from ..training.baselines import (
    PAPER_HYPERPARAMETERS,
    recipe_training_arguments,
    train_fine_tuned,
    train_from_scratch,
    train_soft_prompt,
)
from .approaches import (
    APPROACHES,
    ApproachContext,
    CausalLMApproach,
    DirectApproach,
    FineTunedApproach,
    ForcedPrefixNaiveApproach,
    FromScratchApproach,
    LastWordApproach,
    NaiveApproach,
    SoftPromptApproach,
    TallApproach,
    register_approach,
)
from .report import ApproachResult, LastWordReport, PredictionRecord
from .runner import LastWordEvaluationArguments, evaluate_approach, run_last_word_evaluation
from .scoring import AccuracyEstimate, bootstrap_accuracy, last_word_accuracy_path, words_match
from .task import LastWordExample, make_examples, read_sentences
from .zero_shot import ZeroShotReport, ZeroShotResult, chance_accuracy, evaluate_zero_shot, label_log_likelihoods

__all__ = [
    "APPROACHES",
    "AccuracyEstimate",
    "ApproachContext",
    "ApproachResult",
    "CausalLMApproach",
    "DirectApproach",
    "FineTunedApproach",
    "ForcedPrefixNaiveApproach",
    "FromScratchApproach",
    "LastWordApproach",
    "LastWordEvaluationArguments",
    "LastWordExample",
    "LastWordReport",
    "NaiveApproach",
    "PAPER_HYPERPARAMETERS",
    "PredictionRecord",
    "SoftPromptApproach",
    "TallApproach",
    "ZeroShotReport",
    "ZeroShotResult",
    "bootstrap_accuracy",
    "chance_accuracy",
    "evaluate_zero_shot",
    "evaluate_approach",
    "last_word_accuracy_path",
    "make_examples",
    "read_sentences",
    "recipe_training_arguments",
    "label_log_likelihoods",
    "register_approach",
    "run_last_word_evaluation",
    "train_fine_tuned",
    "train_from_scratch",
    "train_soft_prompt",
    "words_match",
]
