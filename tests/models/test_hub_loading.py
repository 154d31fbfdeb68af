"""Models by hub id through a hub-style cache (offline), revisions, LLaDA end tokens, and errors."""

from __future__ import annotations

import pytest
import torch

from dlrl.errors import DLRLError
from dlrl.models import load_model, load_tokenizer
from dlrl.rollout import generate
from tests.models.hub_cache import add_to_hub_cache, build_llada_like, offline_hub

SHA_A, SHA_B = "a" * 40, "b" * 40
REPO = "GSAI-ML/LLaDA-tiny-Instruct"


@pytest.fixture(scope="module")
def snapshots(tmp_path_factory):
    base = tmp_path_factory.mktemp("hub")
    a, tok = build_llada_like(base / "a", seed=0)
    b, _ = build_llada_like(base / "b", seed=1)
    cache = base / "cache"
    add_to_hub_cache(a, cache, REPO, SHA_A, refs=("v1",))
    add_to_hub_cache(b, cache, REPO, SHA_B, refs=("main",))
    return cache, tok


def _logits(m):
    ids = torch.tensor([[5, 6, 7, 8]])
    return m.logits(ids)


def test_model_loads_by_id_offline_with_llada_end_tokens(snapshots, monkeypatch):
    cache, ref_tok = snapshots
    offline_hub(monkeypatch, cache)
    tok = load_tokenizer(REPO)
    m = load_model(REPO, tokenizer=tok)
    eot, eot_text = tok.convert_tokens_to_ids("<|eot_id|>"), tok.convert_tokens_to_ids("<|endoftext|>")
    assert m.eos_token_id == eot_text and set(m.end_token_ids) == {eot, eot_text}
    # the checkpoint's own chat template renders the prompt
    text = tok.apply_chat_template(
        [{"role": "user", "content": "1+1"}], tokenize=False, add_generation_prompt=True
    )
    assert (
        text == "<|startoftext|><|start_header_id|>user<|end_header_id|>\n\n1+1<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n"
    )


def test_revision_pins_a_snapshot(snapshots, monkeypatch):
    cache, _ = snapshots
    offline_hub(monkeypatch, cache)
    main, v1, by_sha = load_model(REPO), load_model(REPO, revision="v1"), load_model(REPO, revision=SHA_A)
    assert torch.equal(_logits(v1), _logits(by_sha))
    assert not torch.allclose(_logits(main), _logits(v1))


def test_missing_from_cache_offline_names_the_id_and_how_to_download(snapshots, monkeypatch):
    cache, _ = snapshots
    offline_hub(monkeypatch, cache)
    with pytest.raises(DLRLError) as err:
        load_model("GSAI-ML/LLaDA-8B-Instruct")
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith("model 'GSAI-ML/LLaDA-8B-Instruct'")
    assert "HF_HUB_OFFLINE=1" in msg and "hf download GSAI-ML/LLaDA-8B-Instruct --local-dir DIR" in msg
    with pytest.raises(DLRLError, match="no revision 'nope'|not in the Hugging Face cache"):
        load_model(REPO, revision="nope")


@pytest.mark.parametrize("kind", ["RepositoryNotFoundError", "GatedRepoError"])
def test_unknown_and_gated_hub_ids_are_one_line(kind, monkeypatch):
    import huggingface_hub
    import huggingface_hub.errors as hub_errors

    def fail(*a, **k):
        cls = getattr(hub_errors, kind)
        err = cls.__new__(cls)
        Exception.__init__(err, "401 Client Error")
        raise err

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fail)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    with pytest.raises(DLRLError) as err:
        load_tokenizer("someone/secret-model")
    msg = str(err.value)
    assert "\n" not in msg and "'someone/secret-model'" in msg and msg.startswith("model")
    assert ("gated" in msg and "HF_TOKEN" in msg) if kind == "GatedRepoError" else "does not exist" in msg


class _AlwaysSays:
    """A stand-in network that puts all probability on ``token`` at every position."""

    def __init__(self, token, vocab):
        self.token, self.vocab = token, vocab
        self.config = type("C", (), {"model_type": "llada", "mask_token_id": 3, "eos_token_id": 2})()

    def __call__(self, input_ids=None, attention_mask=None, **kw):
        logits = torch.zeros(*input_ids.shape, self.vocab)
        logits[..., self.token] = 10.0
        return type("O", (), {"logits": logits})()

    def parameters(self):
        yield torch.zeros(1)


def test_end_of_turn_token_ends_a_completion():
    """<|eot_id|> (not the EOS id) ends the completion: mask through it, and the rollout stops."""
    from dlrl.models import MaskedDLM

    eot = 9
    dlm = MaskedDLM(module=_AlwaysSays(eot, 16), mask_token_id=3, eos_token_id=2, vocab_size=16)
    dlm.__dict__["_device"] = torch.device("cpu")
    prompt = torch.tensor([[5, 6]])
    kw = dict(gen_length=16, block_length=4, steps=16, temperature=0.0)
    plain = generate(dlm, prompt, torch.ones_like(prompt), **kw)
    stopping = generate(
        MaskedDLM(module=dlm.module, mask_token_id=3, eos_token_id=2, vocab_size=16, stop_token_ids=(eot,)),
        prompt,
        torch.ones_like(prompt),
        **kw,
    )
    assert plain.completion_mask.sum() == 16  # EOS never emitted: the whole canvas counts
    assert stopping.completion_mask.sum() == 1 and stopping.nfe < plain.nfe
