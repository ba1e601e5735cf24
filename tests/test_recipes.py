"""TALL recipes: their plumbing, the gated pass-through of stage 3 and custom transformer 2 copied from the translator."""

from __future__ import annotations

import dataclasses
from collections import Counter

import pytest
import torch
from transformers import AutoModelForSeq2SeqLM, set_seed

from tall_hf import TallForConditionalGeneration
from tall_hf.modules.losses import IGNORE_INDEX


def stage_3_output(model: TallForConditionalGeneration, batch) -> tuple[torch.Tensor, torch.Tensor]:
    """What the LLM reads (stage 3's output) and the LLM's own embeddings of the bridge stream."""
    seen = {}
    handle = model.llm.register_forward_pre_hook(lambda _, args, kwargs: seen.update(kwargs), with_kwargs=True)
    with torch.no_grad():
        model.encode(
            batch["input_ids"], batch["attention_mask"], batch["bridge_input_ids"], batch["bridge_attention_mask"]
        )
    handle.remove()
    return seen["inputs_embeds"], model.get_input_embeddings()(batch["bridge_input_ids"])


def test_source_residual_starts_as_a_pass_through_of_the_llm_embeddings(tiny_paths, batch):
    torch.manual_seed(0)
    model = TallForConditionalGeneration.from_components(**tiny_paths, source_residual=True).eval()
    read, embeddings = stage_3_output(model, batch)
    torch.testing.assert_close(read, embeddings, rtol=0, atol=0)
    paper = TallForConditionalGeneration.from_components(**tiny_paths).eval()
    read, embeddings = stage_3_output(paper, batch)
    assert (read - embeddings).abs().max() > 0.1, "without the option, stage 3 replaces the embeddings"


def test_source_residual_gate_trains_and_opens(tiny_paths, batch):
    torch.manual_seed(0)
    model = TallForConditionalGeneration.from_components(
        **tiny_paths, source_residual=True, loss_mode="all_tokens"
    ).train()
    gate = model.source_transformer.residual_gate
    assert gate.requires_grad
    model(**batch).loss.backward()
    assert gate.grad is not None and gate.grad.abs() > 0
    layer = model.source_transformer.layers[0].fc1.weight
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    optimizer.step()
    optimizer.zero_grad()
    model(**batch).loss.backward()
    assert gate.detach().abs() > 0 and layer.grad.abs().sum() > 0, "once open, custom transformer 1 learns"


def test_source_residual_survives_save_and_load(tiny_paths, tiny_processor, batch, tmp_path):
    torch.manual_seed(0)
    model = TallForConditionalGeneration.from_components(**tiny_paths, source_residual=True).eval()
    with torch.no_grad():
        model.source_transformer.residual_gate.fill_(0.25)
    model.save_pretrained(tmp_path)
    loaded = TallForConditionalGeneration.from_pretrained(tmp_path).eval()
    assert loaded.config.source_residual
    assert loaded.source_transformer.residual_gate.item() == 0.25
    with torch.no_grad():
        torch.testing.assert_close(loaded(**batch).logits, model(**batch).logits)


def test_target_transformer_starts_as_the_translators_encoder(tiny_paths, batch):
    torch.manual_seed(0)
    model = TallForConditionalGeneration.from_components(**tiny_paths, target_transformer_init="translator").eval()
    translator = AutoModelForSeq2SeqLM.from_pretrained(tiny_paths["hr_lr"]).get_encoder().eval()
    states = torch.randn(2, 5, model.config.hr_lr_config.d_model)
    mask = torch.ones(2, 5, dtype=torch.long)
    with torch.no_grad():
        ours = model.target_transformer(inputs_embeds=states, attention_mask=mask).last_hidden_state
        theirs = translator(inputs_embeds=states, attention_mask=mask).last_hidden_state
    torch.testing.assert_close(ours, theirs)
    assert model.target_transformer.layers[0].fc1.weight.requires_grad, "the copy trains"


def test_unknown_target_init_is_rejected(tiny_paths):
    with pytest.raises(ValueError, match="target_transformer_init"):
        TallForConditionalGeneration.from_components(**tiny_paths, target_transformer_init="copy")


def test_recipes_set_model_options_and_training_defaults(tmp_path):
    from tall_hf.training import tall_training_arguments
    from tall_hf.training.recipes import DEFAULT_RECIPE, get_recipe, parser_training_defaults
    from tall_hf.training.run import TallModelArguments

    paper = TallModelArguments(recipe="paper").model_options()
    assert paper == {"loss_mode": "last_token", "source_residual": False, "target_transformer_init": "random"}
    mixed = TallModelArguments(recipe="paper", loss_mode="all_tokens").model_options()
    assert mixed["loss_mode"] == "all_tokens" and mixed["source_residual"] is False
    assert TallModelArguments().recipe == DEFAULT_RECIPE == "auto"
    assert TallModelArguments(recipe="teacher").model_options() == get_recipe("teacher").model
    assert parser_training_defaults(["--recipe", "paper", "--x", "1"])["learning_rate"] == 1e-4
    # `auto` sets only what every recipe shares; the chosen recipe fills the rest at the start of the run.
    assert "learning_rate" not in parser_training_defaults([])
    assert tall_training_arguments(tmp_path).learning_rate == get_recipe("fast").training["learning_rate"]
    args = tall_training_arguments(tmp_path, "paper", max_steps=3)
    assert (args.learning_rate, args.warmup_steps, args.max_steps) == (1e-4, 100, 3)
    with pytest.raises(ValueError, match="Unknown TALL recipe"):
        get_recipe("fastest")


def test_auto_picks_fast_where_the_pipeline_writes_the_gold_words_and_teacher_where_it_does_not():
    from tall_hf.training.recipes import AUTO_MIN_ANSWERED, AUTO_THRESHOLD, choose_recipe

    # The teacher's agreement with the gold last words, measured (benchmarks/README.md, "On real text"): the
    # generated lossy world far above the threshold, the Wikipedia worlds far below.
    assert choose_recipe(0.56, 0.9)[0] == "fast"
    assert choose_recipe(0.03, 0.5)[0] == "teacher"
    assert choose_recipe(AUTO_THRESHOLD, 0.5)[0] == "fast"
    assert choose_recipe(AUTO_THRESHOLD - 0.01, 0.5)[0] == "teacher"
    recipe, reason = choose_recipe(0.031, 0.45)
    assert "3.1%" in reason and "45.0%" in reason and "own words" in reason
    # Components that write (almost) no word, e.g. untrained ones, leave nothing to label: the gold words.
    assert choose_recipe(0.0, 0.0)[0] == "fast"
    assert choose_recipe(0.0, AUTO_MIN_ANSWERED)[0] == "teacher"


def test_auto_fills_the_chosen_recipes_training_settings_and_keeps_given_flags(tmp_path):
    from transformers import HfArgumentParser, TrainingArguments

    from tall_hf.training.recipes import chosen_training_arguments, get_recipe, parser_training_defaults

    argv = ["--output_dir", str(tmp_path), "--learning_rate", "3e-4"]
    parser = HfArgumentParser(TrainingArguments)
    parser.set_defaults(**parser_training_defaults(argv))
    (parsed,) = parser.parse_args_into_dataclasses(argv)
    teacher = chosen_training_arguments(parsed, "teacher")
    recipe = get_recipe("teacher").training
    assert teacher.per_device_train_batch_size == recipe["per_device_train_batch_size"] == 32
    assert (teacher.num_train_epochs, teacher.eval_steps) == (recipe["num_train_epochs"], 500)
    assert teacher.learning_rate == 3e-4  # given on the command line
    fast = chosen_training_arguments(parsed, "fast")
    assert (fast.num_train_epochs, fast.eval_steps, fast.warmup_steps) == (5, 100, 0.05)
    no_evaluation = dataclasses.replace(parsed, eval_strategy="no", load_best_model_at_end=False)
    assert chosen_training_arguments(no_evaluation, "teacher").eval_strategy == "no"


def test_auto_records_its_choice_and_a_resumed_run_reads_it(test_world, tmp_path, monkeypatch):
    """`run_training` with the default recipe measures the teacher on the training sentences, trains with the recipe
    `choose_recipe` picks and writes why to `recipe.json`; a run in a folder holding that file reads it back."""
    import json

    from transformers import TrainingArguments

    from tall_hf.data import PreparationArguments
    from tall_hf.training import run
    from tall_hf.training.recipes import choose_recipe
    from tall_hf.training.run import TallDataArguments, TallModelArguments, run_training

    components = test_world.components
    measured = []

    def agreement(sentences, components, **kwargs):
        measured.append(len(sentences))
        return {"gold": 0.5, "answered": 0.9, "sentences": len(sentences)}

    monkeypatch.setattr(run, "teacher_agreement", agreement)

    def train(folder):
        return run_training(
            TallModelArguments(
                lr_hr_model=components["lr_hr"], llm_model=components["llm"], hr_lr_model=components["hr_lr"]
            ),
            TallDataArguments(train_file=test_world.split_file("train"), max_train_samples=40),
            PreparationArguments(cache_dir=str(tmp_path / "cache")),
            TrainingArguments(
                output_dir=str(folder), max_steps=2, eval_strategy="no", save_strategy="no", use_cpu=True
            ),
        )

    trainer = train(tmp_path / "a")
    choice = json.loads((tmp_path / "a" / "recipe.json").read_text())
    assert measured == [40] and choice["recipe"] == "fast" == choose_recipe(0.5, 0.9)[0]
    assert choice["teacher"]["gold"] == 0.5 and choice["reason"] == choose_recipe(0.5, 0.9)[1]
    assert trainer.args.learning_rate == 1e-3 and trainer.model.config.loss_mode == "last_token"  # fast's
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "recipe.json").write_text(json.dumps({**choice, "recipe": "teacher", "reason": "recorded"}))
    monkeypatch.setattr(run, "with_teacher_labels", lambda dataset, *args, **kwargs: dataset)
    trainer = train(tmp_path / "b")
    assert measured == [40]  # not measured again
    assert trainer.model.config.loss_mode == "last_word" and trainer.args.per_device_train_batch_size == 32


def test_with_word_boundaries_validation_holds_out_whole_sentences(test_world, tmp_path):
    """With every word boundary as an example and no --validation_file, the validation share is taken from the
    sentences before they are cut: each prefix trained on and each prefix evaluated come from disjoint sentences."""
    from transformers import TrainingArguments

    from tall_hf.data import PreparationArguments
    from tall_hf.data.preparation import word_boundary_prefixes
    from tall_hf.training.run import TallDataArguments, TallModelArguments, held_out_sentences, run_training

    components = test_world.components
    lines = test_world.sentences("train")[:60]
    (tmp_path / "train.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    trainer = run_training(
        TallModelArguments(
            lr_hr_model=components["lr_hr"],
            llm_model=components["llm"],
            hr_lr_model=components["hr_lr"],
            recipe="fast",
        ),
        TallDataArguments(
            train_file=str(tmp_path / "train.txt"), word_boundaries=True, validation_split_percentage=20
        ),
        PreparationArguments(cache_dir=str(tmp_path / "cache")),
        TrainingArguments(
            output_dir=str(tmp_path / "run"), max_steps=1, eval_strategy="steps", eval_steps=1, use_cpu=True, seed=3
        ),
    )
    kept, held = held_out_sentences(lines, 20, seed=3)
    assert len(held) == 12 and not set(kept) & set(held)
    trained, evaluated = set(trainer.train_dataset["sentence"]), set(trainer.eval_dataset["sentence"])
    # (A prefix string can still occur in both: generated sentences share their openings.)
    assert (
        evaluated and evaluated <= set(word_boundary_prefixes(held)) and trained <= set(word_boundary_prefixes(kept))
    )


def test_a_few_hundred_steps_beat_an_untrained_tall(run_arguments, test_world, tmp_path):
    """The `fast` recipe's model (the default recipe's but for the last-token loss), 200 steps on the test world's own components and training sentences, scored on its
    held-out test sentences by the training objective and the argmax accuracy at the last token, against the same
    model untrained and against always answering the training set's most frequent last token."""
    from tall_hf import TallProcessor
    from tall_hf.data import PreparationArguments, TallDataCollator, prepare_tall_dataset
    from tall_hf.training import create_tall_trainer
    from tall_hf.training.recipes import get_recipe

    components = test_world.components
    recipe = get_recipe("fast")
    processor = TallProcessor.from_components(**components, loss_mode=recipe.model["loss_mode"])
    set_seed(0)
    model = TallForConditionalGeneration.from_components(**components, **recipe.model)
    preparation = PreparationArguments(max_tokens=model.config.max_stream_tokens, cache_dir=str(tmp_path / "cache"))
    train, test = (
        prepare_tall_dataset(test_world.sentences(split), processor, components["lr_hr"], preparation)
        for split in ("train", "test")
    )
    assert len(train) == 300 and len(test) == 200
    args = run_arguments(
        tmp_path / "run", "fast", max_steps=200, per_device_train_batch_size=16, per_device_eval_batch_size=64, seed=0
    )
    trainer = create_tall_trainer(model, processor, args, train, test)
    before = trainer.evaluate()
    trainer.train()
    after = trainer.evaluate()
    # Measured over world seeds 0-3 x training seeds 0-2 (12 runs): eval loss 5.33-7.36 -> 3.57-3.86 (smallest drop
    # 1.76), last-token accuracy 0.025-0.15 -> 0.275-0.35 (smallest gain 0.185); the most frequent last token scores
    # 0.085-0.10. (Generated whole last words are still rare after 200 steps, 0.5-5%, so they are not asserted.)
    assert after["eval_loss"] < before["eval_loss"] - 1.0, (before, after)
    assert after["eval_last_token_accuracy"] > before["eval_last_token_accuracy"] + 0.1, (before, after)
    last_labels = {
        name: [row[row != IGNORE_INDEX][-1].item() for row in TallDataCollator(processor)(list(dataset))["labels"]]
        for name, dataset in (("train", train), ("test", test))
    }
    most_frequent = Counter(last_labels["train"]).most_common(1)[0][0]
    always = last_labels["test"].count(most_frequent) / len(test)
    assert after["eval_last_token_accuracy"] > always + 0.1, (always, after)


@pytest.mark.slow
def test_default_recipe_reaches_most_of_the_ceiling_on_the_default_world(run_arguments, tiny_cache, tmp_path):
    """benchmarks/recipes.py's measurement as a check: 400 steps of the default recipe on the default world (built
    in about 10 minutes on 2 cores, then cached) against Naive and the world's ceiling."""
    from tall_hf import TallProcessor
    from tall_hf.data import PreparationArguments, prepare_tall_dataset
    from tall_hf.demo import TALL_STEPS
    from tall_hf.evaluation import ApproachContext, NaiveApproach, TallApproach
    from tall_hf.evaluation.runner import evaluate_approach
    from tall_hf.evaluation.task import make_examples
    from tall_hf.generation import TallPredictor
    from tall_hf.training import train_tall
    from tall_hf.training.recipes import DEFAULT_RECIPE, get_recipe
    from tall_hf.worlds import build_world

    world = build_world(tiny_cache / "worlds")
    components = world.components
    recipe = get_recipe(DEFAULT_RECIPE)
    processor = TallProcessor.from_components(**components, loss_mode=recipe.model["loss_mode"])
    torch.manual_seed(0)
    model = TallForConditionalGeneration.from_components(**components, **recipe.model)
    preparation = PreparationArguments(max_tokens=model.config.max_stream_tokens, cache_dir=str(tmp_path / "cache"))
    train = prepare_tall_dataset(world.sentences("train"), processor, components["lr_hr"], preparation)
    args = run_arguments(tmp_path / "tall", max_steps=TALL_STEPS, per_device_train_batch_size=16, seed=0)
    train_tall(model, processor, train, args=args)
    context = ApproachContext(**components, output_dir=str(tmp_path), device=torch.device("cpu"))
    examples = make_examples(world.sentences("test"))
    translations = context.translate_to_hr([example.prefix for example in examples], batch_size=32)
    tall = TallApproach(TallPredictor(model, processor, translator=context.lr_hr_translator[0]))
    estimates = {
        name: evaluate_approach(approach, examples, translations=translations).estimate
        for name, approach in {
            "tall": tall,
            "naive": NaiveApproach.from_context(context),
        }.items()
    }
    # benchmarks/README.md ("Training recipes", this very run): TALL 56.50-56.83% over training seeds 0/1/2 against a
    # ceiling of 63.50% (0.89 x; the earlier letter-map world: 25.00 of 23.83, 1.05 x); half of it (0.45 x) fails.
    # (Direct scores 0 on LR text, so it bounds nothing.)
    ceiling = world.facts["ceiling"]["accuracy"]
    assert estimates["tall"].accuracy >= 0.7 * ceiling, (estimates, ceiling)
    # The default world's HR language is genderless: Naive stays near the pivot bound (measured with
    # benchmarks/recipes.py, this very run, training seeds 0/1/2: TALL 56.67/56.50/56.83 with CI lower bounds
    # 52.66/52.50/52.83; Naive 42.33 [38.50, 46.33]).
    assert estimates["tall"].lower > estimates["naive"].upper, estimates


def train_and_score_recipe(world, tmp_path, recipe: str, seed: int = 0) -> dict:
    """TALL trained on the world's `train` split as `tall-hf train --recipe RECIPE --seed SEED` trains it by the
    recipe's defaults (its model, data and training settings; no held-out evaluation, so no early stopping, and plain
    `TrainingArguments`, so no time limit: the recipe's full epochs, as measured), then Naive and TALL scored on its
    test split."""
    from transformers import TrainingArguments

    from tall_hf.data import PreparationArguments
    from tall_hf.evaluation import ApproachContext, NaiveApproach, TallApproach
    from tall_hf.evaluation.runner import evaluate_approach
    from tall_hf.evaluation.task import make_examples
    from tall_hf.training.recipes import training_defaults
    from tall_hf.training.run import TallDataArguments, TallModelArguments, run_training

    components = world.components
    output = tmp_path / "tall"
    run_training(
        TallModelArguments(
            lr_hr_model=components["lr_hr"],
            llm_model=components["llm"],
            hr_lr_model=components["hr_lr"],
            recipe=recipe,
        ),
        TallDataArguments(train_file=world.split_file("train"), validation_split_percentage=0),
        PreparationArguments(cache_dir=str(tmp_path / "cache")),
        TrainingArguments(
            output_dir=str(output),
            **{
                **training_defaults(recipe),
                "eval_strategy": "no",
                "save_strategy": "no",
                "load_best_model_at_end": False,
                "use_cpu": True,
                "seed": seed,
            },
        ),
    )
    context = ApproachContext(
        **components, output_dir=str(tmp_path), tall_model=str(output), device=torch.device("cpu")
    )
    examples = make_examples(world.sentences("test"))
    translations = context.translate_to_hr([example.prefix for example in examples], batch_size=32)
    approaches = {"tall": TallApproach, "naive": NaiveApproach}
    return {
        name: evaluate_approach(approach.from_context(context), examples, translations=translations).estimate
        for name, approach in approaches.items()
    }


@pytest.mark.slow
@pytest.mark.parametrize(("llm", "seed"), [("qwen2", 0), ("llama", 1)])
def test_the_default_recipe_reaches_half_the_ceiling_on_a_wikipedia_world(
    shared_path, tiny_cache, tmp_path, record_property, llm, seed
):
    """Issue 19's target through `tall-hf train`'s job by its defaults: on a world built from Hebrew Wikipedia
    (`build_world(lr_text=...)`: 4,000 training and 1,000 test sentences; about 10 minutes to build on a busy core,
    then cached), the default recipe `auto` picks `teacher` and TALL reaches half the world's ceiling, its interval
    above Direct's (which is 0 on LR text). Measured (benchmarks/README.md, "On real text"): this test on qwen2 passed
    with 2.40 [1.50, 3.40] of a 3.30 ceiling (0.73 x) in 24 minutes with the world build on one busy core; the same
    recipe's benchmark runs measured 0.56-0.63 x (llama, training seeds 1 and 2; qwen2, training seed 1). The target
    itself is the margin, a thin one on llama (15 and 17 of 1,000 sentences where 14 are needed); the llama case of this
    test has not been run."""
    import json

    from tall_hf.training.recipes import DEFAULT_RECIPE
    from tall_hf.worlds import build_world

    world = build_world(
        tiny_cache / "worlds", lr_text=shared_path("data", "hebrew", "svlm_wiki_50k.txt"), llm=llm, seed=seed
    )
    for role, facts in world.facts["translators"].items():
        assert facts["exact_sentence_rate"] >= 0.9, (role, facts)
    estimates = train_and_score_recipe(world, tmp_path, DEFAULT_RECIPE, seed=seed)  # training seed as measured
    choice = json.loads((tmp_path / "tall" / "recipe.json").read_text(encoding="utf-8"))
    assert choice["recipe"] == "teacher", choice
    ceiling = world.facts["ceiling"]["accuracy"]
    record_property("estimates", {name: estimate.as_percent() for name, estimate in estimates.items()})
    record_property("ceiling", ceiling)
    assert estimates["tall"].accuracy >= 0.5 * ceiling, (estimates, ceiling)
    assert estimates["tall"].lower > 0, estimates
