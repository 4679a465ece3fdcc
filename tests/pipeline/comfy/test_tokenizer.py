"""HashTokenizer keeps CLIP's window layout and is deterministic."""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.comfy.tokenizer import CONTENT, WINDOW, HashTokenizer


def test_clip_window_layout():
    tok = HashTokenizer(49408)
    (window,) = tok.windows("a photo of a cat")
    assert len(window) == WINDOW
    assert window[0] == 49406 and window[6] == 49407
    assert window[7:] == [49407] * (WINDOW - 7)
    assert window[1] == window[4]  # "a" twice -> same id


def test_zero_padding_for_open_clip():
    (window,) = HashTokenizer(49408, pad="zero").windows("cat")
    assert window[:3] == [49406, HashTokenizer(49408).word_id("cat"), 49407] and set(window[3:]) == {0}


def test_long_prompt_splits_into_windows():
    windows = HashTokenizer(1000).windows(" ".join(["word"] * (CONTENT + 5)))
    assert len(windows) == 2
    assert windows[1][:7] == [998] + [HashTokenizer(1000).word_id("word")] * 5 + [999]


def test_case_insensitive_and_punctuation_is_a_token():
    tok = HashTokenizer(1000)
    assert tok.tokens("Cat, DOG") == tok.tokens("cat , dog") and len(tok.tokens("cat,dog")) == 3


@pytest.mark.parametrize("vocab,pad", [(4, "eos"), (1000, "left")])
def test_bad_arguments(vocab, pad):
    with pytest.raises(ValueError):
        HashTokenizer(vocab, pad=pad)


@given(st.text(max_size=400), st.integers(8, 60000))
def test_ids_stay_inside_the_vocabulary_and_repeat(text, vocab):
    tok = HashTokenizer(vocab)
    windows = tok.windows(text)
    assert windows == HashTokenizer(vocab).windows(text)
    assert all(len(w) == WINDOW and w[0] == vocab - 2 for w in windows)
    assert all(0 <= i < vocab for w in windows for i in w)
    content = [i for w in windows for i in w[1:] if i != vocab - 1]
    assert content == tok.tokens(text) and all(1 <= i <= vocab - 3 for i in content)
