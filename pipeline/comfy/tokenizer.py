"""A deterministic stand-in for CLIP's tokenizer.

No tokenizer vocabulary can be downloaded here, so this is NOT CLIP's BPE
tokenizer: each lower-cased word or punctuation mark is hashed (BLAKE2b) to an
id in ``[1, vocab_size - 3]``.  What it keeps from CLIP is the layout the text
encoders expect: windows of 77 positions, a begin token (``vocab_size - 2``),
up to 75 content tokens, an end token (``vocab_size - 1``), then padding (the
end token for CLIP-L, 0 for OpenCLIP bigG, as ComfyUI does), and ComfyUI's
handling of long prompts: more than 75 tokens are split into several 77-token
windows whose encodings are concatenated.  The same text always gives the same
ids, so the same seed gives the same image.  Prompt weighting syntax such as
``(word:1.2)`` is tokenised as plain text, not interpreted.
"""

from __future__ import annotations

import hashlib
import re

WINDOW = 77
CONTENT = WINDOW - 2
_WORDS = re.compile(r"[a-z0-9]+|[^\sa-z0-9]", re.IGNORECASE)


class HashTokenizer:
    """Maps text to CLIP-shaped token windows with a fixed word hash."""

    def __init__(self, vocab_size: int, pad: str = "eos"):
        if vocab_size < 8:
            raise ValueError(f"vocab_size must be at least 8, got {vocab_size}")
        if pad not in ("eos", "zero"):
            raise ValueError(f"pad must be 'eos' or 'zero', got {pad!r}")
        self.vocab_size = vocab_size
        self.bos = vocab_size - 2
        self.eos = vocab_size - 1
        self.pad_id = self.eos if pad == "eos" else 0

    def word_id(self, word: str) -> int:
        digest = hashlib.blake2b(word.lower().encode("utf-8"), digest_size=8).digest()
        return 1 + int.from_bytes(digest, "big") % (self.vocab_size - 3)

    def tokens(self, text: str) -> list[int]:
        """Content token ids of ``text`` (no begin/end/padding)."""
        return [self.word_id(w) for w in _WORDS.findall(text)]

    def windows(self, text: str) -> list[list[int]]:
        """One or more 77-id windows: begin, up to 75 ids, end, padding."""
        ids = self.tokens(text)
        chunks = [ids[i:i + CONTENT] for i in range(0, len(ids), CONTENT)] or [[]]
        out = []
        for chunk in chunks:
            window = [self.bos, *chunk, self.eos]
            window += [self.pad_id] * (WINDOW - len(window))
            out.append(window)
        return out
