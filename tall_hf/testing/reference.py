"""The paper's reference generation loop, kept for the tests and benchmarks that compare the package against it.

For every new token of the next word, the LR prefix is translated again and all seven stages run on the whole
target stream (prefix + the word so far), without a cache, as the TALL reference code does. Greedy, or sampled after
temperature / top-k / top-p from one random stream per sentence (as `TallPredictor` with a seed).
"""

from __future__ import annotations

import torch
from transformers import LogitsProcessorList, PreTrainedModel, SuppressTokensLogitsProcessor

from ..data.translation import lr_hr_translator, translate
from ..generation.decoding import DecodingOptions, continue_word_by_word
from ..generation.word_boundary import word_start_mask
from ..models.tall import TallForCausalLM, TallProcessor
from ..utils.padding import pad_rows
from ..utils.text import normalize_text, words


@torch.inference_mode()
def reference_next_words(
    model: TallForCausalLM,
    processor: TallProcessor,
    prefixes: list[str],
    options: DecodingOptions | None = None,
    *,
    batch_size: int = 1,
    generators: list[torch.Generator] | None = None,
    translations: list[str] | None = None,
    translator: PreTrainedModel | None = None,
    raw: bool = False,
) -> list[str]:
    """The normalised (with `raw`: as decoded) next word of every prefix by the uncached reference algorithm
    (`translations` skip the translator, by default the model's own `lr_hr_translator`; `generators`, one per prefix,
    give each sentence its own random stream when sampling)."""
    options = options or DecodingOptions()
    model.eval()
    if translations is None and translator is None:
        translator = lr_hr_translator(model)
    tokenizer = processor.target_tokenizer
    word_start = word_start_mask(tokenizer, model.get_output_embeddings().out_features)
    suppress = SuppressTokensLogitsProcessor([processor.decoder_start_token_id], device=model.device)
    warpers = LogitsProcessorList(options.warpers()) if options.do_sample else None
    prefix_ids = processor.target_token_ids(prefixes)
    start_id, pad_id = processor.decoder_start_token_id, tokenizer.pad_token_id
    word_ids: list[list[int]] = [[] for _ in prefixes]
    for start in range(0, len(prefixes), batch_size):
        chunk = list(range(start, min(start + batch_size, len(prefixes))))
        active = torch.ones(len(chunk), dtype=torch.bool)
        for step in range(options.max_word_tokens):
            chunk_prefixes = [prefixes[i] for i in chunk]
            if translations is None:
                bridge = translate(chunk_prefixes, translator, processor.source_tokenizer)
            else:
                bridge = [translations[i] for i in chunk]
            batch = processor(chunk_prefixes, bridge)
            rows = [[start_id] + prefix_ids[i] + word_ids[i] for i in chunk]
            batch["decoder_input_ids"], batch["decoder_attention_mask"] = pad_rows(rows, pad_id)
            batch = batch.to(model.device)
            logits = model(**batch, use_cache=False).logits
            last = batch["decoder_attention_mask"].sum(dim=1) - 1
            scores = suppress(batch["decoder_input_ids"], logits[torch.arange(len(chunk)), last].float())
            if warpers is None:
                tokens = scores.argmax(dim=-1)
            else:
                probabilities = torch.softmax(warpers(batch["decoder_input_ids"], scores), dim=-1)
                streams = [None] * len(chunk) if generators is None else [generators[i] for i in chunk]
                draws = zip(probabilities, streams, strict=True)
                tokens = torch.cat([torch.multinomial(p, 1, generator=g) for p, g in draws])
            tokens = tokens.cpu()
            stops = tokens.eq(tokenizer.eos_token_id) | (word_start[tokens] if step > 0 else False)
            active &= ~stops
            for row in active.nonzero().flatten().tolist():
                word_ids[chunk[row]].append(int(tokens[row]))
            if not active.any():
                break
    words = [word.strip() for word in processor.batch_decode(word_ids)]
    return words if raw else [normalize_text(word) for word in words]


def reference_continue_text(
    model: TallForCausalLM,
    processor: TallProcessor,
    prefixes: list[str],
    num_words: int,
    *,
    batch_size: int = 1,
    translator: PreTrainedModel | None = None,
) -> list[str]:
    """Greedy continuation by `num_words` words, each by [`reference_next_words`] on the text so far; a text the
    model ends early has fewer words (as `TallPredictor.continue_text`)."""
    translator = translator or lr_hr_translator(model)
    return continue_word_by_word(
        [" ".join(words(prefix)) for prefix in prefixes],
        num_words,
        lambda _, texts: reference_next_words(
            model, processor, texts, batch_size=batch_size, translator=translator, raw=True
        ),
    )


__all__ = ["reference_continue_text", "reference_next_words"]
