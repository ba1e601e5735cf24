"""The known-answer world: its facts are computed and true, it is deterministic, cached, and built atomically."""

from __future__ import annotations

import dataclasses
import json
import unicodedata

import pytest
import sentencepiece as spm
from sentencepiece import sentencepiece_model_pb2
from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoTokenizer

from tall_hf.cli import main
from tall_hf.utils.text import normalize_text
from tall_hf.worlds import SPLITS, GenderlessMap, HebrewSentenceGenerator, LetterMap, World, build_world
from tall_hf.worlds import build as world_build
from tall_hf.worlds.build import PRESETS, weak_translator_warnings
from tall_hf.worlds.hebrew_generator import DAYS, FEMALE_NAMES, GENDER_PAIRS, MALE_NAMES
from tall_hf.worlds.translators import exact_rate

# The build's plumbing (cache, determinism, atomic build, a user's text) checked on worlds that train a few steps only;
# the facts of a world that learnt are checked on the `test` preset's world (the `test_world` fixture).
PLUMBING = dataclasses.replace(
    PRESETS["test"],
    generated_sentences=1200,
    test_sentences=60,
    train_sentences=240,
    translator_training={"max_steps": 20, "per_device_train_batch_size": 16},
    llm_training={"max_steps": 10, "per_device_train_batch_size": 16},
)


def _letters(texts) -> set[str]:
    return {char for text in texts for char in text if unicodedata.category(char).startswith("L")}


def test_generator_is_seeded_and_follows_its_rules():
    sentences = HebrewSentenceGenerator(3).generate(400)
    assert sentences == HebrewSentenceGenerator(3).generate(400)
    assert sentences != HebrewSentenceGenerator(4).generate(400)
    assert all(5 <= len(sentence.split()) <= 30 for sentence in sentences)
    next_day = [s.split() for s in sentences if "אז מחר יהיה יום" in s]
    assert next_day, "the next-day template never came up"
    for words in next_day:
        assert DAYS.index(words[-1]) == (DAYS.index(words[-6]) + 1) % 7


def test_letter_map_is_a_bijection_onto_an_absent_script():
    texts = ["שלום עולם, 42 פעמים!", "ךםןףץ"]
    letter_map = LetterMap.for_texts(texts)
    assert set(letter_map.mapping) == _letters(texts)
    assert not _letters(texts) & set(letter_map.mapping.values())
    for text in texts:
        hr = letter_map.to_hr(text)
        assert letter_map.to_lr(hr) == text and not _letters([hr]) & _letters(texts)
    assert letter_map.to_hr("שלום עולם, 42")[-4:] == ", 42"  # spaces, digits, punctuation kept
    with pytest.raises(ValueError, match="one to one"):
        LetterMap({"א": "a", "ב": "a"})


def test_genderless_map_merges_gender_and_knows_what_it_lost():
    texts = ["אתמול בערב היא לא ישבה אלא עמדה", "רותי כהן גרה כבר הרבה שנים בעיר חיפה", "כאשר הוא צמא הוא תמיד שותה"]
    genderless = GenderlessMap.for_texts(texts)
    she, he = "היא הלכה הביתה ואז היא שרה", "הוא הלך הביתה ואז הוא שר"
    assert genderless.to_hr(she) == genderless.to_hr(he) != genderless.letter_map.to_hr(she)
    assert genderless.to_hr(he) == genderless.letter_map.to_hr(he)  # masculine forms keep their letter-mapped form
    assert genderless.gender_variant(she) == he and genderless.gender_variant(he) == she
    assert genderless.last_word_ambiguous(texts[0])  # only the pronoun marks her gender
    assert not genderless.last_word_ambiguous(texts[1])  # the first name does (its variant has another HR form)
    assert not genderless.last_word_ambiguous(texts[2])  # "שותה" is one form for both
    assert not LetterMap.for_texts(texts).last_word_ambiguous(texts[0])


def test_lossy_test_world_has_the_ambiguity_and_pivot_bound_its_construction_implies(lossy_test_world):
    world, facts = lossy_test_world, lossy_test_world.facts
    hr_map = world.hr_map
    assert facts["hr_language"] == "genderless" and isinstance(hr_map, GenderlessMap)
    for split in SPLITS:
        assert [hr_map.to_hr(sentence) for sentence in world.sentences(split)] == world.sentences(split, hr=True)
    test = world.sentences("test")
    ambiguous = [hr_map.last_word_ambiguous(sentence) for sentence in test]
    # By construction: ambiguous exactly where a pronoun is the only mark of gender (no first name) and the last word
    # has two forms; then the sentence of the other gender has the same HR form and another last word.
    distinct = {word for pair in GENDER_PAIRS for word in pair}
    names = set(MALE_NAMES) | set(FEMALE_NAMES)
    for sentence, flag in zip(test, ambiguous, strict=True):
        words = sentence.split()
        pronoun_only = {"הוא", "היא"} & set(words) and not names & set(words)
        assert flag == bool(pronoun_only and words[-1] in distinct), sentence
        if flag:
            variant = hr_map.gender_variant(sentence)
            assert hr_map.to_hr(variant) == hr_map.to_hr(sentence) and variant.split()[-1] != words[-1]
    recorded = facts["ambiguity"]
    assert recorded == {"ambiguous": sum(ambiguous), "n": len(test), "share": sum(ambiguous) / len(test)}
    # The generator's agreement sentences are 40% of those generated; measured 29% of the 200 test sentences (seed 0).
    assert 0.2 <= recorded["share"] <= 0.45, recorded
    # Translating back, the HR->LR translator sees one HR sentence for both genders: it is right on about half of the
    # ambiguous sentences (measured 0.43), and never on more than the sentences' majority gender allows by chance.
    back = facts["back_translation"]
    assert back["last_word_rate_ambiguous"] <= 0.65, back
    assert 0 < facts["pivot_bound"]["accuracy"] <= min(facts["ceiling"]["accuracy"], back["last_word_rate"])
    assert facts["ceiling"]["accuracy"] > 0.12, facts["ceiling"]  # measured 0.20: half of it fails


def test_world_splits_are_disjoint_and_the_hr_side_is_the_letter_map(test_world):
    facts = test_world.facts
    letter_map = test_world.letter_map
    seen: set[str] = set()
    for split in SPLITS:
        lr, hr = test_world.sentences(split), test_world.sentences(split, hr=True)
        assert len(lr) == len(hr) == facts["sentences"][split] > 0
        assert not seen & set(lr), f"{split} overlaps an earlier split"
        seen |= set(lr)
        assert [letter_map.to_hr(sentence) for sentence in lr] == hr
        assert [letter_map.to_lr(sentence) for sentence in hr] == lr
        assert all(5 <= len(sentence.split()) <= 30 for sentence in lr)
    assert facts["letter_map"] == letter_map.mapping and facts["hr_language"] == "letter_map"
    assert len(test_world.sentences("test")) == facts["ceiling"]["n"] == facts["pivot_bound"]["n"]
    assert facts["ambiguity"]["share"] == 0  # a lossless world loses nothing


def test_world_facts_match_the_components(test_world):
    facts = test_world.facts
    for role in ("lr_hr", "hr_lr"):
        model = AutoModelForSeq2SeqLM.from_pretrained(test_world.components[role])
        tokenizer = AutoTokenizer.from_pretrained(test_world.components[role])
        recorded = facts["translators"][role]
        assert recorded["parameters"] == model.num_parameters()
        assert recorded["vocab_size"] == model.config.vocab_size
        # Measured 0.75-0.87 (sentences) over world seeds 0-3: the translators translate.
        assert 0.5 < recorded["exact_sentence_rate"] <= 1 and 0.5 < recorded["exact_prefix_rate"] <= 1, recorded
        assert model.generation_config.num_beams == 1
        test = {"lr": test_world.sentences("test"), "hr": test_world.sentences("test", hr=True)}
        source, target = role.split("_")
        measured = exact_rate(model.eval(), tokenizer, test[source], test[target])
        assert measured == pytest.approx(recorded["exact_sentence_rate"], abs=0.02)
    llm = AutoModelForCausalLM.from_pretrained(test_world.components["llm"])
    tokenizer = AutoTokenizer.from_pretrained(test_world.components["llm"])
    assert facts["llm"]["parameters"] == llm.num_parameters() and facts["llm"]["vocab_size"] == len(tokenizer)
    # The LLM's tokenizer was trained on HR text only: none of its tokens holds an LR letter.
    lr_letters = set(test_world.letter_map.mapping)
    assert not any(set(tokenizer.decode([index])) & lr_letters for index in range(len(tokenizer)))
    ceiling = facts["ceiling"]
    # The world LLM learned the HR text: measured 0.18 [0.13, 0.23] (seed 0, one thread), 0.12-0.18 over seeds 0-3;
    # half of it (0.09) fails.
    assert ceiling["accuracy"] > 0.1 and ceiling["ci_lower"] > 0.05, ceiling
    assert facts["build_seconds"] > 0 and facts["versions"]["transformers"] and facts["seed"] == 0


def test_weak_translators_are_named_in_a_warning():
    translators = {"lr_hr": {"exact_sentence_rate": 0.49}, "hr_lr": {"exact_sentence_rate": 0.5}}
    (warning,) = weak_translator_warnings(translators, floor=0.5)
    assert "lr_hr translator is weak" in warning and "translator_training" in warning
    assert weak_translator_warnings(translators, floor=0.4) == []


def test_world_records_its_weak_translators(test_world):
    facts = test_world.facts
    weak = {role for role, recorded in facts["translators"].items() if recorded["exact_sentence_rate"] < 0.5}
    assert facts["settings"]["translator_floor"] == 0.5
    assert len(facts["warnings"]) == len(weak) and all(any(role in w for w in facts["warnings"]) for role in weak)


def test_world_is_cached_and_deterministic(test_world, tmp_path):
    assert build_world(test_world.path.parent, preset="test").path == test_world.path
    first, other = (build_world(tmp_path / name, settings=PLUMBING) for name in ("first", "other"))
    assert other.path.name == first.path.name != test_world.path.name
    for name in ["letter_map.json", *(f"data/{split}.txt" for split in SPLITS), "llm/model.safetensors"]:
        assert (other.path / name).read_bytes() == (first.path / name).read_bytes(), name
    keep = ("build_seconds", "torch_threads")
    strip = lambda facts: {key: value for key, value in facts.items() if key not in keep}  # noqa: E731
    assert strip(other.facts) == strip(first.facts)


def test_an_interrupted_build_leaves_nothing_that_loads(tmp_path, monkeypatch):
    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(world_build, "train_llm", killed)
    with pytest.raises(KeyboardInterrupt):
        build_world(tmp_path, settings=PLUMBING)
    assert list(tmp_path.iterdir()) == []
    # A folder a SIGKILL left behind (no completion stamp) is refused, and a new build does not take it.
    stale = tmp_path / "world-qwen2-stale"
    (stale / "data").mkdir(parents=True)
    (stale / "world.json").write_text("{}")
    with pytest.raises(FileNotFoundError, match="No complete world"):
        World.load(stale)


def test_world_from_a_users_text(shared_path, tmp_path):
    wiki = shared_path("data", "hebrew", "svlm_wiki_50k.txt")
    with wiki.open(encoding="utf-8") as handle:
        lines = [next(handle) for _ in range(600)]
    text = tmp_path / "wiki.txt"
    text.write_text("".join(lines + lines[:50] + ["קצר מדי\n"]), encoding="utf-8")  # duplicates and a short line
    world = build_world(tmp_path / "worlds", lr_text=text, settings=PLUMBING)
    facts = world.facts
    assert facts["lr_text"] == str(text) and facts["filtered"].get("duplicate", 0) >= 50
    assert facts["filtered"].get("too_short", 0) >= 1
    kept = {normalize_text(line) for line in lines if 5 <= len(normalize_text(line).split()) <= 30}
    assert sum(facts["sentences"].values()) == len(kept)
    assert set(world.sentences("test")) <= kept


def test_world_with_a_sentencepiece_style_llm_tokenizer(shared_path, tmp_path):
    wiki = shared_path("data", "hebrew", "svlm_wiki_50k.txt")
    with wiki.open(encoding="utf-8") as handle:
        text = tmp_path / "wiki.txt"
        text.write_text("".join(next(handle) for _ in range(600)), encoding="utf-8")
    settings = dataclasses.replace(PLUMBING, llm_tokenizer="metaspace_unigram")
    with pytest.raises(ValueError, match="loads its tokenizer as a BPE model"):
        build_world(tmp_path / "worlds", lr_text=text, llm="qwen2", settings=settings)
    world = build_world(tmp_path / "worlds", lr_text=text, llm="llama", settings=settings)
    tokenizer = AutoTokenizer.from_pretrained(world.components["llm"])
    backend = json.loads(tokenizer.backend_tokenizer.to_str())
    assert backend["model"]["type"] == "Unigram" and backend["pre_tokenizer"]["type"] == "Metaspace"
    sentence = world.sentences("test", hr=True)[0]
    assert tokenizer.decode(tokenizer(sentence)["input_ids"], skip_special_tokens=True) == sentence
    assert world.facts["settings"]["llm_tokenizer"] == "metaspace_unigram"
    assert world.facts["ceiling"]["n"] == PLUMBING.test_sentences  # the Direct prompt reads it
    # The option is part of the cache key; at its default it is not (worlds built before it keep their key).
    assert build_world(tmp_path / "worlds", lr_text=text, llm="llama", settings=PLUMBING).path != world.path
    assert "llm_tokenizer" not in PLUMBING.cache_description()


def test_world_of_other_sizes(shared_path, tmp_path):
    """Other component sizes through the public settings: unigram sentencepiece models of another size, a deeper and
    wider LLM with another vocabulary; each setting is part of the cache key."""
    wiki = shared_path("data", "hebrew", "svlm_wiki_50k.txt")
    with wiki.open(encoding="utf-8") as handle:
        text = tmp_path / "wiki.txt"
        text.write_text("".join(next(handle) for _ in range(600)), encoding="utf-8")
    settings = dataclasses.replace(
        PLUMBING,
        spm_vocab_size=500,
        spm_model_type="unigram",
        llm_vocab_size=700,
        llm_size={"width": 80, "ffn": 160, "layers": 3, "heads": 4},
    )
    world = build_world(tmp_path / "worlds", lr_text=text, llm="llama", settings=settings)
    for role in ("lr_hr", "hr_lr"):
        for side in ("source", "target"):
            spm_model = spm.SentencePieceProcessor(model_file=str(world.path / role / f"{side}.spm"))
            assert spm_model.get_piece_size() == 500
        trainer_spec = sentencepiece_model_pb2.ModelProto.FromString((world.path / role / "source.spm").read_bytes())
        assert trainer_spec.trainer_spec.model_type == sentencepiece_model_pb2.TrainerSpec.UNIGRAM
    config = AutoConfig.from_pretrained(world.components["llm"])
    assert (config.num_hidden_layers, config.hidden_size, config.intermediate_size) == (3, 80, 160)
    assert config.vocab_size == len(AutoTokenizer.from_pretrained(world.components["llm"])) == 700
    assert world.facts["settings"]["spm_model_type"] == "unigram"
    plumbing = build_world(tmp_path / "worlds", lr_text=text, llm="llama", settings=PLUMBING)
    assert plumbing.path != world.path
    assert "spm_model_type" not in PLUMBING.cache_description()  # worlds built before the field keep their key
    large = PRESETS["text_large"]
    assert (large.spm_vocab_size, large.spm_model_type, large.llm_vocab_size, large.llm_size["layers"]) == (
        3000,
        "unigram",
        4000,
        4,
    )


@pytest.mark.slow
def test_demo_on_the_default_world(tmp_path, capsys):
    output = tmp_path / "demo"
    assert main(["demo", "--output-dir", str(output)]) == 0
    printed = capsys.readouterr().out
    assert "| HR ceiling |" in printed and "| Pivot bound |" in printed and "| TALL |" in printed
    summary = json.loads((output / "evaluation" / "results.json").read_text())
    results = summary["results"]
    by_name = {row["approach"]: row for row in results}
    approaches = {"Direct", "Fine-tuned", "Naive", "Naive, LR prefix forced", "Soft prompt", "From scratch", "TALL"}
    assert approaches | {"HR ceiling", "Pivot bound"} == set(by_name) and all(row["n"] >= 600 for row in results)
    world = World.load(next((output / "worlds").glob("world-*")))
    facts, stated = world.facts, summary["metadata"]["world"]
    assert facts["hr_language"] == stated["hr_language"] == "genderless"
    assert stated["ceiling"] == facts["ceiling"] and stated["pivot_bound"] == facts["pivot_bound"]
    assert 0.3 <= facts["ambiguity"]["share"] <= 0.6, facts["ambiguity"]
    for name, key in (("HR ceiling", "ceiling"), ("Pivot bound", "pivot_bound")):  # 4 decimals in results.json
        assert by_name[name]["accuracy"] == pytest.approx(100 * facts[key]["accuracy"], abs=1e-4)
    # Issue 20's target: TALL above Naive (intervals apart), Naive no higher than the pivot bound allows, TALL at least
    # 0.8 x the ceiling, and the approaches that give the LLM LR text below TALL.
    tall, naive, ceiling = by_name["TALL"], by_name["Naive"], by_name["HR ceiling"]
    assert tall["ci_lower"] > naive["ci_upper"], (tall, naive)
    assert naive["accuracy"] <= by_name["Pivot bound"]["ci_upper"], (naive, by_name["Pivot bound"])
    assert tall["accuracy"] >= 0.8 * ceiling["accuracy"], (tall, ceiling)
    for baseline in ("Direct", "Fine-tuned", "Soft prompt", "From scratch"):
        assert by_name[baseline]["ci_upper"] < tall["ci_lower"], (by_name[baseline], tall)
    # Issue 24: TALL and the trained baselines stand on three training seeds, and the verdicts say so. Measured
    # (benchmarks/README.md, the lossy world): TALL vs Naive +14.17 [+10.33, +17.78] over 3 seeds, "better".
    assert tall["seeds"] == by_name["Fine-tuned"]["seeds"] == 3 and by_name["Naive"]["seeds"] == 1
    comparisons = {row["baseline"]: row for row in summary["comparisons"]}
    assert all(row["seeds"] == 3 for row in comparisons.values()), comparisons
    assert comparisons["Naive"]["verdict"] == "better" and comparisons["Naive"]["difference"] > 7, comparisons
    for baseline in ("Direct", "Fine-tuned", "Soft prompt", "From scratch"):
        assert comparisons[baseline]["verdict"] == "better", comparisons[baseline]
    prefix = world.sentences("test")[0].rsplit(" ", 1)[0]
    assert main(["predict", "--model", str(output / "tall" / "seed-0"), prefix]) == 0
    (word,) = capsys.readouterr().out.split()
    assert word and _letters([word]) <= set(world.letter_map.mapping)
