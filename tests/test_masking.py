import pytest
import torch

from electra.objectives.masking import apply_mask, choose_positions, special_token_mask
from electra.objectives.sampling import SAMPLERS, gumbel_sample, inverse_cdf_sample

CLS, SEP, PAD, MASK = 2, 3, 0, 4


def batch(lengths, T=40, seed=0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(10, 200, (len(lengths), T), generator=g)
    am = torch.zeros(len(lengths), T, dtype=torch.bool)
    for i, n in enumerate(lengths):
        ids[i, n:] = PAD
        ids[i, 0] = CLS
        ids[i, n - 1] = SEP
        ids[i, n // 2] = SEP
        am[i, :n] = True
    return ids, am


def test_count_per_sequence_and_specials_never_chosen():
    ids, am = batch([40, 21, 7, 4, 3])
    special = special_token_mask(ids, (CLS, SEP, PAD))
    positions, weights = choose_positions(am, special, 0.15, num_slots=6, generator=torch.Generator().manual_seed(1))
    # max(1, round(0.15 * non-pad)), capped by eligible tokens: 40 -> 6, 21 -> 3, 7 -> 1, 4 -> 1 (one eligible),
    # 3 -> 0 ([CLS] [SEP] [SEP]: nothing eligible)
    assert weights.sum(1).tolist() == [6, 3, 1, 1, 0]
    chosen = torch.gather(ids, 1, positions)[weights]
    assert not torch.isin(chosen, torch.tensor([CLS, SEP, PAD])).any()
    for row in range(5):  # distinct positions per row
        p = positions[row][weights[row]]
        assert len(set(p.tolist())) == len(p)


def test_positions_are_uniform_over_eligible_tokens():
    ids, am = batch([20] * 4000)
    special = special_token_mask(ids, (CLS, SEP, PAD))
    positions, weights = choose_positions(am, special, 0.15, 3, torch.Generator().manual_seed(0))
    hist = torch.bincount(positions[weights], minlength=20).float()
    eligible = hist[~special[0, :20]]
    assert hist[special[0, :20]].sum() == 0
    assert (eligible / eligible.mean() - 1).abs().max() < 0.1


def test_electra_85_15_0_and_bert_80_10_10():
    ids, am = batch([40] * 3000)
    special = special_token_mask(ids, (CLS, SEP, PAD))
    g = torch.Generator().manual_seed(0)
    positions, weights = choose_positions(am, special, 0.15, 6, g)
    for p_mask, p_rand in ((0.85, 0.0), (0.8, 0.1)):
        out = apply_mask(ids, positions, weights, MASK, 200, p_mask, p_rand, g)
        new = torch.gather(out.input_ids, 1, positions)[weights]
        orig = out.targets[weights]
        frac_mask = (new == MASK).float().mean().item()
        frac_kept = (new == orig).float().mean().item()
        frac_rand = 1 - frac_mask - frac_kept
        assert abs(frac_mask - p_mask) < 0.01
        assert abs(frac_rand - p_rand) < 0.01  # a random draw equal to the original counts as kept (rare)
        # nothing outside the chosen positions changes
        changed = out.input_ids != ids
        chosen = torch.zeros_like(ids, dtype=torch.bool).scatter(1, positions, weights)
        assert not (changed & ~chosen).any()


def test_masking_is_a_pure_function_of_the_generator():
    ids, am = batch([30, 25])
    special = special_token_mask(ids, (CLS, SEP, PAD))
    a = choose_positions(am, special, 0.15, 5, torch.Generator().manual_seed(3))
    b = choose_positions(am, special, 0.15, 5, torch.Generator().manual_seed(3))
    c = choose_positions(am, special, 0.15, 5, torch.Generator().manual_seed(4))
    assert torch.equal(a[0], b[0]) and not torch.equal(a[0], c[0])


@pytest.mark.parametrize("sampler", sorted(SAMPLERS))
def test_sampler_follows_softmax(sampler):
    sample = SAMPLERS[sampler]
    logits = torch.log(torch.tensor([0.6, 0.3, 0.1])).expand(20000, 3)
    s = sample(logits, 1.0, torch.Generator().manual_seed(0))
    freq = torch.bincount(s, minlength=3).float() / len(s)
    torch.testing.assert_close(freq, torch.tensor([0.6, 0.3, 0.1]), atol=0.015, rtol=0)
    hot = sample(logits, 0.05, torch.Generator().manual_seed(0))  # low temperature -> argmax
    assert (hot == 0).float().mean() > 0.99


def test_inverse_cdf_matches_gumbel_max_on_a_wide_vocabulary():
    """Both samplers draw from softmax(logits / t): over 60 tokens with probabilities spanning three
    orders of magnitude, each sampler's counts pass a chi-square test against the softmax, and a
    token of logit -inf is never drawn."""
    torch.manual_seed(0)
    logits = torch.randn(60) * 2.0
    logits[7] = -float("inf")
    probs = torch.softmax(logits / 1.3, -1).double()
    n = 200_000
    for sample in (gumbel_sample, inverse_cdf_sample):
        s = sample(logits.expand(n, 60), 1.3, torch.Generator().manual_seed(1))
        counts = torch.bincount(s, minlength=60).double()
        assert counts[7] == 0
        keep = probs * n >= 5
        chi2 = (((counts - n * probs) ** 2) / (n * probs))[keep].sum().item()
        dof = int(keep.sum()) - 1  # mean dof, sd sqrt(2 dof): 6 sd is far beyond chance
        assert chi2 < dof + 6 * (2 * dof) ** 0.5, (sample.__name__, chi2, dof)


def test_inverse_cdf_inverts_the_cdf_at_the_given_uniforms():
    logits = torch.log(torch.tensor([[0.2, 0.5, 0.3]]))
    u = torch.tensor([[0.0], [0.19], [0.21], [0.69], [0.71], [0.999]]).squeeze(1)
    s = inverse_cdf_sample(logits.expand(6, 3), 1.0, uniform=u)
    assert s.tolist() == [0, 0, 1, 1, 2, 2]


def test_roc_auc_against_hand_computed():
    from electra.objectives.output import roc_auc

    scores = torch.tensor([0.1, 0.4, 0.35, 0.8])
    labels = torch.tensor([False, False, True, True])
    assert roc_auc(scores, labels) == 0.75  # pairs (pos, neg): (0.35>0.1), (0.35<0.4), (0.8>0.1), (0.8>0.4)
    assert roc_auc(torch.zeros(4), labels) == 0.5  # constant scores (the trivial guess): chance
    assert roc_auc(torch.tensor([1.0, 2.0, 3.0, 4.0]), labels) == 1.0


def test_inverse_cdf_crosses_block_boundaries():
    """The two-level search lands on the right token on either side of a block edge (and in the
    partial last block), against a plain float64 cumulative sum."""
    from electra.objectives.sampling import CDF_BLOCK

    V = 3 * CDF_BLOCK + 17
    logits = torch.randn(500, V, generator=torch.Generator().manual_seed(2)) * 3
    logits[:, CDF_BLOCK - 1] = 8.0  # heavy tokens right at block edges
    logits[:, CDF_BLOCK] = 8.0
    logits[:, V - 1] = 8.0
    u = torch.rand(500, generator=torch.Generator().manual_seed(3))
    cdf = torch.softmax(logits.double(), -1).cumsum(-1)
    expected = torch.searchsorted(cdf, (u.double() * cdf[:, -1]).unsqueeze(-1), right=True).squeeze(-1)
    got = inverse_cdf_sample(logits, 1.0, uniform=u)
    assert (got == expected).float().mean() > 0.99  # float32 exp vs float64 softmax may differ at an edge
    assert got.max() < V and {CDF_BLOCK - 1, CDF_BLOCK, V - 1} <= set(got.tolist())


def test_inverse_cdf_temperature_is_a_division_of_the_logits():
    """Temperature t samples softmax(logits / t): the same tokens as t = 1 on logits / t (the t = 1
    path skips the division), here over a vocabulary with a partial last block."""
    from electra.objectives.sampling import CDF_BLOCK

    logits = torch.randn(300, 2 * CDF_BLOCK + 5, generator=torch.Generator().manual_seed(4)) * 4
    u = torch.rand(300, generator=torch.Generator().manual_seed(5))
    hot = inverse_cdf_sample(logits, 0.5, uniform=u)
    assert torch.equal(hot, inverse_cdf_sample(logits / 0.5, 1.0, uniform=u))
    assert not torch.equal(hot, inverse_cdf_sample(logits, 1.0, uniform=u))
