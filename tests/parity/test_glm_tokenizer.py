"""GLM-4's tokenizer, both layouts, against tiktoken built from the real tokenizer.model with GLM-4's pattern."""

import os
import random
import shutil

import pytest

from glm_helpers import GLM4_CHAT, glm4_fast, glm4_slow, udhr_texts

from tongues import AutoTokenizer, ChatGLM4Tokenizer, PreTrainedTokenizerFast
from tongues.models.glm.tokenization_chatglm4 import GLM4_PATTERN, GLM4_SPECIAL_TOKENS
from tongues.tokenization import TokenizerFileError

TEXTS = udhr_texts()
GMASK, SOP = 151331, 151333


@pytest.fixture(scope="module")
def slow():
    return glm4_slow()


@pytest.fixture(scope="module")
def fast():
    return glm4_fast()


@pytest.fixture(scope="module")
def reference(slow):
    import tiktoken

    specials = {token: len(slow.ranks) + i for i, token in enumerate(GLM4_SPECIAL_TOKENS)}
    return tiktoken.Encoding(name="glm4", pat_str=GLM4_PATTERN, mergeable_ranks=slow.ranks, special_tokens=specials)


def _with_specials(text: str) -> str:
    # Special tokens inside and around the text, as a chat prompt has them.
    middle = len(text) // 2
    return f"<|system|>\n{text[:middle]}<|user|>{text[middle:]}<|assistant|>\n<|endoftext|>"


def test_real_files_load_natively(slow):
    tokenizer = AutoTokenizer.from_pretrained(GLM4_CHAT)
    assert type(tokenizer) is ChatGLM4Tokenizer
    assert slow.vocab_size == 151329 and len(slow) == 151343
    assert [slow.convert_tokens_to_ids(t) for t in GLM4_SPECIAL_TOKENS] == list(range(151329, 151343))
    assert slow.eos_token == slow.pad_token == "<|endoftext|>" and slow.pad_token_id == 151329
    assert slow.padding_side == "left"


@pytest.mark.parametrize("language", sorted(TEXTS))
def test_udhr_ids_match_tiktoken(slow, fast, reference, language):
    text = _with_specials(TEXTS[language])
    expected = reference.encode(text, allowed_special="all")
    assert slow(text, add_special_tokens=False).input_ids == expected
    assert fast(text, add_special_tokens=False).input_ids == expected
    assert slow(text).input_ids == [GMASK, SOP] + expected
    assert fast(text).input_ids == [GMASK, SOP] + expected
    assert slow.decode(expected) == text
    assert fast.decode(expected) == text


def test_plain_text_mode_reads_special_tokens_as_text(slow, reference):
    text = "a <|user|> b"
    assert slow(text, add_special_tokens=False, split_special_tokens=True).input_ids == reference.encode_ordinary(text)


def test_tokens_and_vocab_agree_across_layouts(slow, fast):
    ids = list(range(len(slow)))
    assert slow.convert_ids_to_tokens(ids) == fast.convert_ids_to_tokens(ids)
    assert slow.get_vocab() == fast.get_vocab()


def test_any_id_sequence_decodes_like_tiktoken(slow, fast, reference):
    rng = random.Random(0)
    for _ in range(300):
        ids = [rng.randrange(151329) for _ in range(rng.randint(1, 12))]
        expected = reference.decode(ids)  # invalid UTF-8 becomes U+FFFD, as in tongues
        assert slow.decode(ids) == expected
        assert fast.decode(ids) == expected
    specials = [151331, 151333, 151336]
    assert slow.decode(specials + [9707], skip_special_tokens=True) == reference.decode([9707])
    assert slow.decode(specials) == "[gMASK]<sop><|user|>"


@pytest.mark.parametrize("language", ["cmn_hans", "jpn", "hin", "tha", "amh", "kor", "arb"])
def test_streaming_decode_never_emits_broken_utf8(slow, fast, language):
    import torch

    from tongues import TextStreamer

    class Collect(TextStreamer):
        def __init__(self, tokenizer):
            super().__init__(tokenizer)
            self.pieces = []

        def on_finalized_text(self, text, stream_end=False):
            self.pieces.append(text)

    text = TEXTS[language][:400] + " 🙂👍🏽 終わり"
    for tokenizer in (slow, fast):
        ids = tokenizer(text, add_special_tokens=False).input_ids
        streamer = Collect(tokenizer)
        for token in ids:  # one id at a time, as generate streams them
            streamer.put(torch.tensor([token]))
        streamer.end()
        assert all("\ufffd" not in piece for piece in streamer.pieces)
        assert "".join(streamer.pieces) == text


def test_hf_layout_round_trip_and_oracle(fast, tmp_path):
    import transformers

    fast.save_pretrained(tmp_path)
    assert os.path.exists(tmp_path / "tokenizer.json")
    ours = AutoTokenizer.from_pretrained(tmp_path)
    assert isinstance(ours, PreTrainedTokenizerFast)
    oracle = transformers.AutoTokenizer.from_pretrained(str(tmp_path))
    for language in ("eng", "cmn_hans", "rus", "hin", "arb", "jpn"):
        text = _with_specials(TEXTS[language][:2000])
        assert ours(text).input_ids == oracle(text).input_ids == fast(text).input_ids
        assert ours(text).input_ids[:2] == [GMASK, SOP]
        assert ours.decode(ours(text).input_ids) == oracle.decode(oracle(text).input_ids)
    assert ours.padding_side == "left" and ours.eos_token_id == 151329
    batch = ours(["短", "a longer text"], padding=True)
    assert batch.attention_mask[0][0] == 0  # left padding


def test_original_layout_save_round_trip(slow, tmp_path):
    slow.save_pretrained(tmp_path)
    with open(tmp_path / "tokenizer.model", "rb") as a, open(os.path.join(GLM4_CHAT, "tokenizer.model"), "rb") as b:
        assert a.read() == b.read()
    again = AutoTokenizer.from_pretrained(tmp_path)
    assert type(again) is ChatGLM4Tokenizer
    text = _with_specials(TEXTS["fra"][:500])
    assert again(text).input_ids == slow(text).input_ids
    assert again.chat_template == slow.chat_template
    assert again.added_tokens_decoder.keys() == slow.added_tokens_decoder.keys()


def test_bare_tokenizer_model_gets_the_special_tokens(tmp_path):
    shutil.copy(os.path.join(GLM4_CHAT, "tokenizer.model"), tmp_path / "tokenizer.model")
    tokenizer = ChatGLM4Tokenizer(vocab_file=str(tmp_path / "tokenizer.model"))
    assert tokenizer.convert_tokens_to_ids("<|observation|>") == 151338
    assert tokenizer("hi").input_ids[:2] == [GMASK, SOP]


def test_padded_batch_tensors(slow):
    batch = slow(["你好", "Hello, how are you today?"], padding=True, return_tensors="pt")
    assert batch.input_ids.shape == batch.attention_mask.shape
    assert batch.input_ids[0, 0].item() == slow.pad_token_id and batch.attention_mask[0, 0].item() == 0
    assert batch.input_ids[1, :2].tolist() == [GMASK, SOP]


def test_pair_and_special_token_masks(slow):
    ids = slow("a", "b", return_special_tokens_mask=True, return_token_type_ids=True)
    assert ids.input_ids == [GMASK, SOP, 64, 65, 151329]
    assert ids.special_tokens_mask == [1, 1, 0, 0, 1]
    assert ids.token_type_ids == [0, 0, 0, 1, 1]


def test_malformed_tokenizer_model_names_the_line(tmp_path):
    path = tmp_path / "tokenizer.model"
    path.write_bytes(b"IQ== 0\nnot-base64!! 1\n")
    with pytest.raises(TokenizerFileError, match="line 2"):
        ChatGLM4Tokenizer(vocab_file=str(path))
    path.write_bytes(b"IQ== 0\nIQ== 1\n")
    with pytest.raises(TokenizerFileError, match="listed twice"):
        ChatGLM4Tokenizer(vocab_file=str(path))
    with pytest.raises(TokenizerFileError, match="tokenizer.model"):
        ChatGLM4Tokenizer.from_pretrained(str(tmp_path / "nowhere"))


def test_unknown_token_and_id_are_named(slow):
    with pytest.raises(KeyError, match="not a token"):
        slow.convert_tokens_to_ids("no such token ✗")
    with pytest.raises(ValueError, match="999999"):
        slow.decode([999999])
