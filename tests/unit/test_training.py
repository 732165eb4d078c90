"""The training loop: learning, exact resume, checkpoint layout, schedule, data packing, tokenizer trainer."""

import json
import math

import pytest
import torch

from tongues.models.bloom import BloomConfig
from tongues.models.bloom.modeling_bloom import BloomForCausalLM
from tongues.training import (
    Trainer, TrainingArguments, batch_indices, evaluate, list_text_files, loss_per_character, lr_factor, pack,
    read_documents, save_tokenizer, split_documents, split_held_out, tokenize_and_pack, train_bpe_tokenizer,
)

TOY = [
    "the cat sat on the mat. the dog sat on the log.\n" * 6,
    "le chat est sur le tapis. le chien est sur la bûche.\n" * 6,
    "кошка сидит на ковре. собака сидит на бревне.\n" * 6,
]


@pytest.fixture(scope="module")
def toy_tokenizer():
    return train_bpe_tokenizer(texts=TOY, vocab_size=320)


@pytest.fixture(scope="module")
def toy_blocks(toy_tokenizer):
    return tokenize_and_pack(TOY, toy_tokenizer, block_size=16)


def tiny_model(vocab_size, dropout=0.0, seed=0):
    torch.manual_seed(seed)
    config = BloomConfig(vocab_size=vocab_size, hidden_size=32, n_layer=2, n_head=4, hidden_dropout=dropout,
                         attention_dropout=dropout, bos_token_id=1, eos_token_id=2, pad_token_id=3)
    return BloomForCausalLM(config)


def args_for(tmp_path, **overrides):
    values = dict(output_dir=str(tmp_path / "run"), max_steps=6, batch_size=4, block_size=16, learning_rate=3e-3,
                  warmup_steps=2, seed=1, progress=False)
    values.update(overrides)
    return TrainingArguments(**values)


def test_loss_goes_down_on_a_toy_corpus(tmp_path, toy_tokenizer, toy_blocks):
    model = tiny_model(toy_tokenizer.get_vocab_size())
    before = evaluate(model, toy_blocks)["eval_loss"]
    result = Trainer(model, args_for(tmp_path, max_steps=40, learning_rate=1e-2, eval_every=20), toy_blocks,
                     toy_blocks).train()
    assert result.eval["eval_loss"] < before - 1.5, (before, result.eval)
    assert math.isclose(result.eval["eval_perplexity"], math.exp(result.eval["eval_loss"]), rel_tol=1e-9)
    assert [r["step"] for r in result.history if "eval_loss" in r] == [20, 40]


def test_resume_continues_the_same_run_bit_for_bit(tmp_path, toy_tokenizer, toy_blocks):
    vocab = toy_tokenizer.get_vocab_size()
    straight = tiny_model(vocab, dropout=0.1)
    full = Trainer(straight, args_for(tmp_path / "a", save_every=3, gradient_accumulation_steps=2), toy_blocks)
    full_result = full.train()

    resumed_model = tiny_model(vocab, dropout=0.1, seed=123)  # different init: everything must come from disk
    resumed = Trainer(resumed_model, args_for(tmp_path / "b", save_every=3, gradient_accumulation_steps=2),
                      toy_blocks)
    resumed_result = resumed.train(resume_from=tmp_path / "a" / "run" / "checkpoint-3")

    assert resumed_result.step == full_result.step == 6
    assert [r["loss"] for r in resumed_result.history] == [r["loss"] for r in full_result.history]
    for (name, a), (_, b) in zip(straight.state_dict().items(), resumed_model.state_dict().items()):
        assert torch.equal(a, b), name
    opt_a, opt_b = full.optimizer.state_dict()["state"], resumed.optimizer.state_dict()["state"]
    for key in opt_a:
        assert torch.equal(opt_a[key]["exp_avg_sq"], opt_b[key]["exp_avg_sq"])
    assert resumed.scheduler.get_last_lr() == full.scheduler.get_last_lr()


def test_checkpoint_layout_loads_in_tongues_and_the_reference(tmp_path, toy_tokenizer, toy_blocks):
    transformers = pytest.importorskip("transformers")
    tok_dir = tmp_path / "tok"
    save_tokenizer(toy_tokenizer, tok_dir)
    model = tiny_model(toy_tokenizer.get_vocab_size())
    trainer = Trainer(model, args_for(tmp_path, max_steps=2), toy_blocks, tokenizer_dir=tok_dir)
    trainer.train()
    checkpoint = tmp_path / "run" / "checkpoint-2"
    names = {p.name for p in checkpoint.iterdir()}
    assert {"config.json", "model.safetensors", "optimizer.pt", "scheduler.pt", "rng_state.pt",
            "trainer_state.json", "tokenizer.json", "tokenizer_config.json"} <= names
    assert json.loads((checkpoint / "trainer_state.json").read_text())["step"] == 2

    ids = toy_blocks[:2]
    model.eval()
    expected = model(input_ids=ids).logits
    ours = BloomForCausalLM.from_pretrained(checkpoint)
    torch.testing.assert_close(ours(input_ids=ids).logits, expected, atol=1e-5, rtol=1e-5)
    reference = transformers.BloomForCausalLM.from_pretrained(checkpoint).eval()
    with torch.no_grad():
        torch.testing.assert_close(reference(input_ids=ids).logits, expected, atol=1e-5, rtol=1e-5)


def test_bf16_autocast_and_accumulation_run(tmp_path, toy_tokenizer, toy_blocks):
    model = tiny_model(toy_tokenizer.get_vocab_size(), dropout=0.1)
    result = Trainer(model, args_for(tmp_path, max_steps=2, bf16=True, gradient_accumulation_steps=2,
                                     eval_every=2), toy_blocks, toy_blocks).train()
    assert math.isfinite(result.train_loss) and math.isfinite(result.eval["eval_loss"])
    assert model.dtype == torch.float32  # autocast leaves the master weights in fp32


def test_resume_from_an_incomplete_folder_names_what_is_missing(tmp_path, toy_tokenizer, toy_blocks):
    (tmp_path / "ckpt").mkdir()
    trainer = Trainer(tiny_model(toy_tokenizer.get_vocab_size()), args_for(tmp_path), toy_blocks)
    with pytest.raises(FileNotFoundError, match="optimizer.pt"):
        trainer.train(resume_from=tmp_path / "ckpt")


def test_data_outside_the_vocabulary_is_refused(tmp_path, toy_blocks):
    with pytest.raises(ValueError, match="vocab_size=16"):
        Trainer(tiny_model(16), args_for(tmp_path), toy_blocks)


def test_warmup_then_cosine_schedule():
    assert lr_factor(0, 10, 110, 0.1) == pytest.approx(0.1)
    assert lr_factor(9, 10, 110, 0.1) == pytest.approx(1.0)
    assert lr_factor(60, 10, 110, 0.1) == pytest.approx(0.55)
    assert lr_factor(110, 10, 110, 0.1) == pytest.approx(0.1)
    assert lr_factor(500, 10, 110, 0.1) == pytest.approx(0.1)


def test_data_order_is_a_function_of_seed_and_step():
    first_epoch = torch.cat([batch_indices(m, 10, 3, seed=5) for m in range(3)])
    assert len(set(first_epoch.tolist())) == 9  # a permutation, the short tail skipped
    assert torch.equal(batch_indices(4, 10, 3, seed=5), batch_indices(4, 10, 3, seed=5))
    assert not torch.equal(batch_indices(0, 10, 3, seed=5), batch_indices(3, 10, 3, seed=5))  # next epoch reshuffles
    with pytest.raises(ValueError, match="batch_size=20"):
        batch_indices(0, 10, 20, seed=0)


def test_pack_and_split():
    blocks = pack([[5, 6, 7], [8, 9]], block_size=3, eos_token_id=2)
    assert blocks.tolist() == [[5, 6, 7], [2, 8, 9]]
    with pytest.raises(ValueError, match="block_size=40"):
        pack([[1, 2]], 40, None)
    train, held = split_held_out(["a\nb\nc\nd\ne\nf\ng\nh\ni\nj\n", "one line"], 0.2)
    assert train == ["a\nb\nc\nd\ne\nf\ng\nh\n", "one line"] and held == ["i\nj\n"]
    with pytest.raises(ValueError, match="fraction"):
        split_held_out(["x"], 1.0)


def test_text_files_and_folders(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "b.txt").write_text("beta", encoding="utf-8")
    (tmp_path / "d" / "a.md").write_text("alpha", encoding="utf-8")
    (tmp_path / "d" / "skip.bin").write_bytes(b"\x00")
    (tmp_path / "c.txt").write_text("gamma", encoding="utf-8")
    assert read_documents([tmp_path / "d", tmp_path / "c.txt"]) == ["alpha", "beta", "gamma"]
    with pytest.raises(FileNotFoundError, match="nope"):
        list_text_files([tmp_path / "nope"])
    (tmp_path / "bad.txt").write_bytes(b"\xff\xfe")
    with pytest.raises(ValueError, match="bad.txt is not UTF-8"):
        read_documents([tmp_path / "bad.txt"])


def test_training_arguments_are_checked(tmp_path):
    with pytest.raises(ValueError, match="batch_size"):
        TrainingArguments(output_dir=str(tmp_path), batch_size=0)
    with pytest.raises(ValueError, match="learning_rate"):
        TrainingArguments(output_dir=str(tmp_path), learning_rate=0)


def test_bpe_tokenizer_round_trip_and_saved_layout(tmp_path, toy_tokenizer):
    assert [toy_tokenizer.token_to_id(t) for t in ("<unk>", "<s>", "</s>", "<pad>")] == [0, 1, 2, 3]
    text = "le chien 🐕 est ici, 人人生而自由"  # unseen characters still encode, as bytes
    assert toy_tokenizer.decode(toy_tokenizer.encode(text).ids) == text
    save_tokenizer(toy_tokenizer, tmp_path)
    config = json.loads((tmp_path / "tokenizer_config.json").read_text())
    assert config["tokenizer_class"] == "BloomTokenizerFast" and config["eos_token"] == "</s>"
    from tongues.tokenization import AutoTokenizer

    loaded = AutoTokenizer.from_pretrained(tmp_path)
    assert loaded.encode(text, add_special_tokens=False) == toy_tokenizer.encode(text).ids
    assert loaded.eos_token_id == 2
    with pytest.raises(ValueError, match="vocab_size=100"):
        train_bpe_tokenizer(texts=TOY, vocab_size=100)
    with pytest.raises(ValueError, match="files=.*texts="):
        train_bpe_tokenizer()


def test_keep_best_saves_the_model_of_the_lowest_held_out_loss(tmp_path, toy_tokenizer, toy_blocks):
    model = tiny_model(toy_tokenizer.get_vocab_size())
    result = Trainer(model, args_for(tmp_path, max_steps=12, learning_rate=1e-2, eval_every=3, keep_best=True),
                     toy_blocks, toy_blocks).train()
    evals = {r["step"]: r["eval_loss"] for r in result.history if "eval_loss" in r}
    assert result.best_step == min(evals, key=evals.get) and result.best_eval_loss == min(evals.values())
    best = BloomForCausalLM.from_pretrained(tmp_path / "run" / "best")
    assert evaluate(best, toy_blocks)["eval_loss"] == pytest.approx(result.best_eval_loss, abs=1e-5)
    with pytest.raises(ValueError, match="keep_best needs eval_every"):
        args_for(tmp_path, keep_best=True)


def test_max_seconds_stops_the_run_early_and_saves_it(tmp_path, toy_tokenizer, toy_blocks):
    model = tiny_model(toy_tokenizer.get_vocab_size())
    result = Trainer(model, args_for(tmp_path, max_steps=50, max_seconds=1e-9, eval_every=10), toy_blocks,
                     toy_blocks).train()
    assert result.step == 1 and "eval_loss" in result.history[-1]
    assert (tmp_path / "run" / "checkpoint-1" / "model.safetensors").is_file()
    with pytest.raises(ValueError, match="max_seconds must be positive"):
        args_for(tmp_path, max_seconds=0)


def test_split_documents_holds_out_whole_documents():
    documents = [f"document {i}\n" for i in range(40)]
    train, held = split_documents(documents, 0.1, seed=3)
    assert len(held) == 4 and len(train) == 36 and sorted(train + held) == sorted(documents)
    assert not set(train) & set(held)
    assert split_documents(documents, 0.1, seed=3) == (train, held)
    assert split_documents(documents, 0.1, seed=4)[1] != held
    assert train == [d for d in documents if d in train]  # the order is kept
    assert len(split_documents(documents[:3], 0.05)[1]) == 1  # at least one held out
    assert split_documents(documents[:1], 0.05) == (documents[:1], [])
    with pytest.raises(ValueError, match="held-out fraction"):
        split_documents(documents, 1.0)


def test_loss_per_character_matches_the_token_loss(toy_tokenizer):
    model = tiny_model(toy_tokenizer.get_vocab_size())
    texts = TOY[:2]
    scored = loss_per_character(model, toy_tokenizer, texts, block_size=16)
    ids = [i for text in texts for i in toy_tokenizer.encode(text, add_special_tokens=False).ids + [2]]
    assert scored["tokens"] == len(ids) and scored["characters"] == sum(map(len, texts))
    # Recompute by hand: blocks of 16 (the last one shorter), every token but each block's first predicted.
    total, predicted = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(ids), 16):
            block = torch.tensor([ids[start:start + 16]])
            if block.shape[1] < 2:
                continue
            total += model(input_ids=block, labels=block).loss.item() * (block.shape[1] - 1)
            predicted += block.shape[1] - 1
    assert scored["loss"] == pytest.approx(total / predicted, rel=1e-5)
    assert scored["nats_per_character"] == pytest.approx(total / predicted * len(ids) / scored["characters"], rel=1e-5)
    with pytest.raises(ValueError, match="no text"):
        loss_per_character(model, toy_tokenizer, [""], block_size=16)
