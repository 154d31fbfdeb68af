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


def test_reveal_draws_among_all_chunks_then_shows_the_last():
    rng = random.Random(0)
    last_drawn = 0
    for n in range(1, 12):
        for eta in (0.0, 0.2, 0.5, 0.6, 1.0):
            shown = reveal(n, eta, rng)
            assert shown[-1]
            k = min(int(n * (1 - eta)), n)
            # the reference hides one fewer when the draw picked the last chunk
            assert shown.count(False) in (k, k - 1)
            last_drawn += shown.count(False) == k - 1
    assert last_drawn > 0
    # with every chunk drawn (η = 0), all but the last stay hidden
    assert reveal(6, 0.0, random.Random(1)) == [False] * 5 + [True]


def test_etas_are_sorted_and_in_range():
    etas = group_etas(8, 0.2, 0.6, random.Random(1))
    assert etas == sorted(etas) and all(0.2 <= e <= 0.6 for e in etas)


def test_placement_stretches_only_hidden_gaps_hand_computed():
    # 150 hint tokens, region 226: s = 226/150 capped at 1.5 (the audit's case). All revealed:
    # the reference lays them end to end; no empty position inside text shown whole.
    chunks = [(0, 8), (8, 8), (16, 5), (21, 7), (28, 9)]
    assert place_chunks(chunks, 150, 226, 1.5) == [
        (0, 0, 8),
        (8, 8, 8),
        (16, 16, 5),
        (21, 21, 7),
        (28, 28, 9),
    ]
    # (8, 8) and (21, 7) hidden: gap 8 → ⌊12.0⌋ = 12, gap 7 → ⌊10.5⌋ = 10
    shown = [(0, 8), (16, 5), (28, 9)]
    assert place_chunks(shown, 150, 226, 1.5) == [(0, 0, 8), (16, 20, 5), (28, 35, 9)]
    # the first revealed chunk starts at ⌊offset·s⌋: 5·1.5 = 7.5 → 7
    assert place_chunks([(5, 5), (10, 5)], 150, 226, 1.5) == [(5, 7, 5), (10, 12, 5)]
    # region 20 for 15 tokens: s = 4/3; gap 5 → ⌊6.67⌋ = 6
    assert place_chunks([(0, 5), (10, 5)], 15, 20, 1.5) == [(0, 0, 5), (10, 11, 5)]
    # a gap is capped at max_spacing
    assert place_chunks([(0, 5), (200, 5)], 205, 400, 1.5, max_spacing=100) == [(0, 0, 5), (200, 105, 5)]
    # past the region: the chunk is cut at the region's end, later ones dropped
    assert place_chunks([(0, 5), (5, 5), (10, 5)], 15, 12, 1.5) == [(0, 0, 5), (5, 5, 5), (10, 10, 2)]
    assert place_chunks([(0, 5)], 15, 0, 1.5) == []


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


def test_group_hints_stretched_keep_source_neighbours_contiguous():
    hint = list(range(100, 140))  # 40 tokens, region 70: s = 1.5
    layout = HintLayout(chunk_min=5, chunk_max=10, free_tail=10, max_stretch=1.5)
    ids, mask = group_hints(hint, 8, 80, layout, random.Random(5), mask_id=7)
    gaps = 0
    for row in range(8):
        pos = mask[row].nonzero().flatten().tolist()
        toks = ids[row, pos].tolist()
        assert toks == sorted(toks) and toks[-1] == hint[-1]  # in source order, the last chunk shown
        for (p0, t0), (p1, t1) in zip(zip(pos, toks), zip(pos[1:], toks[1:])):
            if t1 == t0 + 1:
                assert p1 == p0 + 1  # source neighbours are never pulled apart
            else:
                assert p1 - p0 - 1 == int((t1 - t0 - 1) * 1.5)  # a hidden gap, stretched
                gaps += 1
    assert gaps > 0


def test_group_hints_longer_than_the_region_are_cut_to_it():
    hint = list(range(200, 260))  # 60 tokens, region 40: s = 1, the text is cut to 40 tokens
    layout = HintLayout(chunk_min=4, chunk_max=4, eta_min=0.5, eta_max=0.5, free_tail=8, max_stretch=1.5)
    ids, mask = group_hints(hint, 4, 48, layout, random.Random(0), mask_id=7)
    assert not mask[:, 40:].any()
    for row in range(4):
        pos = mask[row].nonzero().flatten()
        assert ids[row, pos].tolist() == [hint[p] for p in pos.tolist()]
        # 10 chunks of 4, 5 drawn hidden; one fewer when the draw hit the (forced) last chunk
        assert mask[row, 36:40].all() and int(mask[row].sum()) in (20, 24)


def test_hint_template_names_missing_column():
    assert hint_text("<r>\n{reasoning}", {"reasoning": "1+1=2"}) == "<r>\n1+1=2"
    with pytest.raises(ConfigError, match="'reasoning'.*columns: prompt, solution"):
        hint_text("{reasoning}", {"prompt": "q", "solution": "2"})
