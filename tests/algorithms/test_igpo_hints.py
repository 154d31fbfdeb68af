"""IGPO hint layout: chunking, placement, reveal, and the fixed tokens handed to the sampler."""

import random

import pytest

from dlrl.algorithms.igpo_hints import (
    HintLayout,
    group_etas,
    group_hints,
    hint_text,
    place_chunks,
    reveal,
    split_chunks,
)
from dlrl.errors import ConfigError


@pytest.mark.parametrize("n", [1, 4, 5, 9, 10, 11, 14, 37, 100])
def test_chunks_cover_the_text_in_order_with_sizes_in_range(n):
    for seed in range(20):
        chunks = split_chunks(n, 5, 10, random.Random(seed))
        assert [o for o, _ in chunks] == [sum(s for _, s in chunks[:i]) for i in range(len(chunks))]
        assert sum(s for _, s in chunks) == n  # nothing dropped, unlike the reference's short tail
        if n >= 5:
            assert all(5 <= s <= 14 for _, s in chunks)  # a tail < 5 joins the last chunk


def test_reveal_keeps_the_last_chunk_and_hides_the_floor_share():
    rng = random.Random(0)
    for n in range(1, 12):
        for eta in (0.0, 0.2, 0.5, 0.6, 1.0):
            shown = reveal(n, eta, rng)
            assert shown[-1]
            assert shown.count(False) == min(int(n * (1 - eta)), n - 1)


def test_etas_are_sorted_and_in_range():
    etas = group_etas(8, 0.2, 0.6, random.Random(1))
    assert etas == sorted(etas) and all(0.2 <= e <= 0.6 for e in etas)


def test_placement_stretches_within_bound_and_respects_the_free_tail():
    chunks = [(0, 5), (5, 5), (10, 5)]
    # region 40 for 15 tokens: factor 40/15 capped at 1.5
    assert place_chunks(chunks, 15, 70, 30, 1.5) == [(0, 0, 5), (5, 7, 5), (10, 15, 5)]
    # region 20 for 15 tokens: factor 20/15
    assert place_chunks(chunks, 15, 50, 30, 1.5) == [(0, 0, 5), (5, 6, 5), (10, 13, 5)]
    # region 12 < 15 tokens: unstretched, the chunk past the region is dropped
    assert place_chunks(chunks, 15, 42, 30, 1.5) == [(0, 0, 5), (5, 5, 5)]
    assert place_chunks(chunks, 15, 30, 30, 1.5) == []


def test_group_hints_fix_exactly_revealed_hint_tokens_inside_the_region():
    hint = list(range(10, 40))  # 30 distinct token ids
    layout = HintLayout(chunk_min=3, chunk_max=6, eta_min=0.2, eta_max=0.6, free_tail=8, max_stretch=1.0)
    ids, mask = group_hints(hint, 8, 48, layout, random.Random(3), mask_id=99)
    assert ids.shape == mask.shape == (8, 48)
    assert (ids[~mask] == 99).all()
    assert not mask[:, 40:].any()  # the last free_tail positions stay free
    for row in range(8):
        pos = mask[row].nonzero().flatten()
        # unstretched: the token at position p is hint[p]; the last chunk (ending at 29) is shown
        assert ids[row, pos].tolist() == [hint[p] for p in pos.tolist()]
        assert mask[row, 27:30].all()
        assert 0 < mask[row].sum() < 30
    # η sorted ascending: later rows reveal at least as many chunks on average
    assert mask[:4].sum() <= mask[4:].sum()


def test_hint_template_names_missing_column():
    assert hint_text("<r>\n{reasoning}", {"reasoning": "1+1=2"}) == "<r>\n1+1=2"
    with pytest.raises(ConfigError, match="'reasoning'.*columns: prompt, solution"):
        hint_text("{reasoning}", {"prompt": "q", "solution": "2"})
