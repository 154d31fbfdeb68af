import pytest
import torch

from dlrl.likelihood.logprob import selected_logprobs


def _reference(logits, index, targets):
    logsm = logits.double().log_softmax(-1)[index]
    return logsm.gather(1, targets[:, None]).squeeze(1), -(logsm.exp() * logsm).sum(-1)


@pytest.mark.parametrize("chunk", [1, 3, 64])
def test_values_entropy_and_grad_match_full_softmax(chunk):
    g = torch.Generator().manual_seed(0)
    logits = (3 * torch.randn(20, 50, generator=g)).requires_grad_()
    index = torch.tensor([0, 3, 4, 9, 17, 19])
    targets = torch.randint(0, 50, (6,), generator=g)
    weights = torch.randn(6, generator=g)

    lp, ent = selected_logprobs(logits, index, targets, chunk_size=chunk, return_entropy=True)
    (lp * weights).sum().backward()
    grad = logits.grad.clone()
    logits.grad = None
    ref_lp, ref_ent = _reference(logits, index, targets)
    (ref_lp * weights.double()).sum().backward()

    assert lp.dtype == torch.float32 and not ent.requires_grad
    torch.testing.assert_close(lp.double(), ref_lp, atol=1e-5, rtol=0)
    torch.testing.assert_close(ent.double(), ref_ent.detach(), atol=1e-5, rtol=0)
    torch.testing.assert_close(grad, logits.grad.float(), atol=1e-6, rtol=0)
    unselected = torch.ones(20, dtype=torch.bool)
    unselected[index] = False
    assert grad[unselected].abs().sum() == 0


def test_gradcheck_double():
    logits = torch.randn(6, 7, dtype=torch.float64, requires_grad=True)
    index, targets = torch.tensor([1, 2, 5]), torch.tensor([0, 6, 3])
    # The function computes in float32; compare its float64-input gradient numerically.
    assert torch.autograd.gradcheck(
        lambda x: selected_logprobs(x, index, targets, chunk_size=2)[0].double(),
        (logits,),
        eps=1e-3,
        atol=1e-3,
    )


def test_bf16_logits_keep_dtype_for_grad():
    logits = torch.randn(4, 32).to(torch.bfloat16).requires_grad_()
    lp, _ = selected_logprobs(logits, torch.tensor([0, 2]), torch.tensor([1, 5]))
    lp.sum().backward()
    assert lp.dtype == torch.float32 and logits.grad.dtype == torch.bfloat16
