import torch

from dlrl.rollout.order_plot import plot_unmask_order


def test_plot_writes_png(tmp_path):
    when = torch.arange(16).flip(0)
    when[3] = -1  # a fixed token is drawn grey
    out = plot_unmask_order({"low_confidence": when}, block_length=8, steps=16, out=tmp_path / "order.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
