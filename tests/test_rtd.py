import pytest
import torch

from electra.config import load_config
from electra.data.tokenizer import SpecialTokens
from electra.model.electra import ElectraPair, Generator, build_model
from electra.objectives.mlm import mlm_forward
from electra.objectives.rtd import rtd_forward
from electra.objectives.task import PretrainingStep

SPECIAL = SpecialTokens(pad=0, unk=1, cls=2, sep=3, mask=4)


def make_batch(B=4, T=24, V=120, seed=0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, V, (B, T), generator=g)
    ids[:, 0] = SPECIAL.cls
    ids[:, -1] = SPECIAL.sep
    am = torch.ones(B, T, dtype=torch.bool)
    am[0, 18:] = False
    ids[0, 18:] = SPECIAL.pad
    ids[0, 17] = SPECIAL.sep
    seg = torch.zeros_like(ids)
    seg[:, 12:] = 1
    return ids, seg, am


def tiny_cfg(V=120):
    return load_config("debug", overrides={"model": {"vocab_size": V, "hidden_size": 32, "embedding_size": 16,
                                                     "ffn_size": 64, "num_heads": 2}})


def test_rtd_forward_returns_named_losses_and_weighting():
    cfg = tiny_cfg()
    torch.manual_seed(0)
    model = ElectraPair(cfg.model).eval()
    ids, seg, am = make_batch()
    out = rtd_forward(model, ids, seg, am, cfg.train, SPECIAL, 4, torch.Generator().manual_seed(0))
    assert set(out.losses) == {"generator", "discriminator"}
    torch.testing.assert_close(out.loss, out.losses["generator"] + 50.0 * out.losses["discriminator"])
    assert out.counts["disc_total"] == am.sum()
    # random init: generator loss ~ log(V)
    assert abs(out.losses["generator"].item() - torch.log(torch.tensor(120.0)).item()) < 0.5


def test_correctly_sampled_token_is_labelled_original():
    cfg = tiny_cfg()
    model = ElectraPair(cfg.model).eval()
    # Make the generator always predict the original token: bias enormous on the target ids is not
    # possible per position, so instead use a vocabulary where every non-special token is the same id.
    ids, seg, am = make_batch()
    ids = torch.where(ids >= 5, torch.full_like(ids, 7), ids)
    with torch.no_grad():
        model.generator.head.bias.fill_(-1e4)
        model.generator.head.bias[7] = 1e4
    out = rtd_forward(model, ids, seg, am, cfg.train, SPECIAL, 4, torch.Generator().manual_seed(0))
    assert out.counts["sampled_correct"] == out.counts["gen_total"]
    assert out.counts["disc_replaced"] == 0  # every sample equals the original -> nothing is "replaced"


def test_replaced_labels_match_corruption():
    cfg = tiny_cfg()
    model = ElectraPair(cfg.model).eval()
    ids, seg, am = make_batch(B=8, T=40)
    out = rtd_forward(model, ids, seg, am, cfg.train, SPECIAL, 6, torch.Generator().manual_seed(1))
    replaced = out.counts["disc_replaced"].item()
    masked = out.counts["gen_total"].item()
    sampled_ok = out.counts["sampled_correct"].item()
    assert replaced == masked - sampled_ok  # replaced = chosen positions whose sample differs


def test_no_gradient_reaches_generator_from_rtd_loss():
    cfg = tiny_cfg()
    model = ElectraPair(cfg.model)
    ids, seg, am = make_batch()
    out = rtd_forward(model, ids, seg, am, cfg.train, SPECIAL, 4, torch.Generator().manual_seed(0))
    out.losses["discriminator"].backward()
    gen_only = [p for n, p in model.generator.named_parameters() if not n.startswith("encoder.embeddings.")]
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in gen_only)
    assert model.discriminator.head.out.weight.grad.abs().sum() > 0
    # the shared embeddings do get the discriminator's gradient (the paper shares them)
    assert model.discriminator.encoder.embeddings.token.weight.grad.abs().sum() > 0


def test_generator_logits_only_at_masked_positions():
    cfg = tiny_cfg()
    model = ElectraPair(cfg.model)
    shapes = []
    hook = model.generator.head.register_forward_hook(lambda m, i, o: shapes.append(tuple(o.shape)))
    ids, seg, am = make_batch(B=3, T=24)
    rtd_forward(model, ids, seg, am, cfg.train, SPECIAL, 4, torch.Generator().manual_seed(0))
    hook.remove()
    assert shapes == [(3, 4, 120)]


def test_mlm_objective():
    cfg = load_config("debug", overrides={"model": {"vocab_size": 120}, "train": {"objective": "mlm"}})
    model = Generator(cfg.model.discriminator())
    ids, seg, am = make_batch()
    out = mlm_forward(model, ids, seg, am, cfg.train, SPECIAL, 4, torch.Generator().manual_seed(0))
    assert set(out.losses) == {"mlm"} and out.loss.requires_grad
    assert out.counts["gen_total"] > 0


@pytest.mark.parametrize("objective,random_token_prob,sampler", [
    ("electra", 0.0, "inverse_cdf"), ("electra", 0.1, "inverse_cdf"), ("electra", 0.0, "gumbel"),
    ("mlm", 0.0, "inverse_cdf"), ("mlm", 0.1, "inverse_cdf")])
def test_pre_drawn_noise_gives_the_in_place_draws_result(objective, random_token_prob, sampler):
    """The training loop draws the step's noise up front (so a compiled step has no random op);
    with the same generator state the step is bit-identical to drawing in place, dropout included."""
    cfg = load_config("debug", overrides={"model": {"vocab_size": 120}, "train": {
        "objective": objective, "random_token_prob": random_token_prob, "mask_token_prob": 0.85 - random_token_prob,
        "sampler": sampler}})
    torch.manual_seed(0)
    step = PretrainingStep(build_model(cfg.model, objective), cfg.train, SPECIAL, num_slots=5)
    ids, seg, am = make_batch(B=6, T=24)
    results = []
    for pre_drawn in (False, True):
        generator = torch.Generator().manual_seed(3)
        torch.manual_seed(1)  # the same dropout masks in both runs
        out = (step(ids, seg, am, noise=step.draw_noise(ids, generator)) if pre_drawn
               else step(ids, seg, am, generator))
        out.loss.backward()
        grads = [p.grad.clone() for p in step.parameters()]
        step.zero_grad(set_to_none=True)
        results.append((out, grads))
    (a, grads_a), (b, grads_b) = results
    assert torch.equal(a.loss, b.loss) and a.counts.keys() == b.counts.keys()
    assert all(torch.equal(a.counts[k], b.counts[k]) for k in a.counts)
    assert all(torch.equal(x, y) for x, y in zip(grads_a, grads_b))
    if objective == "electra":
        assert torch.equal(a.disc_input, b.disc_input) and a.counts["disc_replaced"] > 0
    noise = step.draw_noise(ids, torch.Generator().manual_seed(3))
    assert (noise.random_tokens is not None) == (random_token_prob > 0)
    assert (noise.sample_uniform is not None) == (objective == "electra")
    if objective == "electra":  # Gumbel-max: a uniform per vocabulary entry; inverse CDF: one per slot
        assert noise.sample_uniform.shape == ((6, 5, 120) if sampler == "gumbel" else (6, 5))
