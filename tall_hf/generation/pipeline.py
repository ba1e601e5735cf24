"""`pipeline("tall-next-word", model=...)`: TALL's next-word prediction as a transformers pipeline."""

from __future__ import annotations

import os

from transformers import AutoModelForCausalLM, Pipeline
from transformers.pipelines import PIPELINE_REGISTRY

from .predictor import TallPredictor

TASK = "tall-next-word"
PREDICTION_PARAMETERS = (
    "batch_size",
    "do_sample",
    "temperature",
    "top_k",
    "top_p",
    "seed",
    "use_cache",
    "max_word_tokens",
)


class TallNextWordPipeline(Pipeline):
    """Predicts the next low-resource word of each prefix with a [`TallPredictor`] (batched, per word, cached).

    ```python
    >>> import tall_hf
    >>> from transformers import pipeline
    >>> predict = pipeline("tall-next-word", model="path/to/tall-model", device="cpu")
    >>> predict("הילדים הלכו אל")
    {'prefix': 'הילדים הלכו אל', 'next_word': '...'}
    >>> predict(["הילדים הלכו אל", "אתמול בערב"], num_words=3, do_sample=True, seed=0)
    [{'prefix': ..., 'continuation': '...'}, ...]
    ```

    The model folder holds the TALL model and its `TallProcessor`; the LR->HR translator is the model's own
    (`tall_hf.data.translation.lr_hr_translator`), or `translator=` (hub id or folder). With `num_words`, each prefix
    is continued by that many words instead. The whole input list goes to the predictor at once, which batches it
    (`batch_size`).
    """

    _load_processor = True
    _load_tokenizer = False
    _load_image_processor = False
    _load_video_processor = False
    _load_feature_extractor = False

    def __init__(
        self, *args, translator: str | os.PathLike | None = None, translator_revision: str | None = None, **kwargs
    ) -> None:
        super().__init__(*args, **kwargs)
        self.predictor = TallPredictor.from_model(
            self.model, self.processor, translator, translator_revision=translator_revision
        )

    def _sanitize_parameters(self, num_words: int | None = None, **kwargs) -> tuple[dict, dict, dict]:
        unknown = sorted(set(kwargs) - set(PREDICTION_PARAMETERS))
        if unknown:
            raise TypeError(f"Unknown arguments of the {TASK!r} pipeline: {unknown}; use {PREDICTION_PARAMETERS}.")
        forward_params = dict(kwargs)
        if num_words is not None:
            forward_params["num_words"] = num_words
        return {}, forward_params, {}

    def __call__(self, inputs: str | list[str], **kwargs) -> dict | list[dict]:
        """One dict per prefix: `{"prefix", "next_word"}`, or `{"prefix", "continuation"}` with `num_words`."""
        single = isinstance(inputs, str)
        preprocess_params, forward_params, postprocess_params = self._sanitize_parameters(**kwargs)
        forward_params = {**self._forward_params, **forward_params}
        if self._batch_size is not None:  # `pipeline(..., batch_size=N)`: Pipeline keeps it aside
            forward_params.setdefault("batch_size", self._batch_size)
        outputs = self.run_single([inputs] if single else list(inputs), preprocess_params, forward_params, {})
        return outputs[0] if single else outputs

    def preprocess(self, prefixes: list[str]) -> dict:
        return {"prefixes": prefixes}

    def _forward(self, model_inputs: dict, num_words: int | None = None, **prediction_kwargs) -> dict:
        prefixes = model_inputs["prefixes"]
        if num_words is None:
            return {"prefixes": prefixes, "next_word": self.predictor.predict_next_word(prefixes, **prediction_kwargs)}
        continuations = self.predictor.continue_text(prefixes, num_words, **prediction_kwargs)
        return {"prefixes": prefixes, "continuation": continuations}

    def postprocess(self, model_outputs: dict) -> list[dict]:
        key = "next_word" if "next_word" in model_outputs else "continuation"
        return [
            {"prefix": prefix, key: output}
            for prefix, output in zip(model_outputs["prefixes"], model_outputs[key], strict=True)
        ]


def register_pipeline() -> None:
    """Make `pipeline("tall-next-word", model=...)` available (idempotent)."""
    if TASK not in PIPELINE_REGISTRY.get_supported_tasks():
        PIPELINE_REGISTRY.register_pipeline(TASK, pipeline_class=TallNextWordPipeline, pt_model=AutoModelForCausalLM)
