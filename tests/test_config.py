import json

import pytest

from electra.config import MODEL_PRESETS, config_from_dict, load_config, parse_overrides
from electra.errors import UserError


def test_presets_have_paper_generator_shapes():
    small = load_config("small").model.generator()
    assert (small.hidden_size, small.num_heads, small.ffn_size, small.num_layers) == (64, 1, 256, 12)
    base = load_config("base").model.generator()
    assert (base.hidden_size, base.num_heads, base.ffn_size) == (256, 4, 1024)
    large = load_config("large").model.generator()
    assert (large.hidden_size, large.num_heads, large.ffn_size, large.num_layers) == (256, 4, 1024, 24)
    assert load_config("large").train.mask_prob == 0.25
    assert set(MODEL_PRESETS) == {"debug", "mini", "small", "base", "large"}


def test_mini_preset_is_bert_mini_with_a_quarter_width_generator():
    mini = load_config("mini").model
    d, g = mini.discriminator(), mini.generator()
    assert (d.num_layers, d.hidden_size, d.num_heads, d.ffn_size, d.embedding_size) == (4, 256, 4, 1024, 128)
    assert (g.num_layers, g.hidden_size, g.num_heads, g.ffn_size, g.embedding_size) == (4, 64, 1, 256, 128)


def test_unknown_key_is_an_error():
    with pytest.raises(UserError, match="unknown config key train.lerning_rate"):
        load_config("small", overrides=parse_overrides(["train.lerning_rate=1e-3"]))
    with pytest.raises(UserError, match="unknown config key model.hiden"):
        load_config("small", overrides={"model": {"hiden": 3}})


def test_overrides_are_typed():
    cfg = load_config("debug", overrides=parse_overrides(["train.learning_rate=1e-3", "model.num_layers=3",
                                                          "train.compile=false", "train.max_minutes=none"]))
    assert cfg.train.learning_rate == 1e-3 and cfg.model.num_layers == 3 and cfg.train.compile is False
    with pytest.raises(UserError, match="num_layers=.three.: expected int"):
        load_config("debug", overrides=parse_overrides(["model.num_layers=three"]))
    with pytest.raises(UserError, match="not divisible"):
        load_config("debug", overrides=parse_overrides(["model.num_heads=5"]))
    assert load_config("debug").train.sampler == "inverse_cdf"
    assert load_config("debug", overrides=parse_overrides(["train.sampler=gumbel"])).train.sampler == "gumbel"
    with pytest.raises(UserError, match="train.sampler must be gumbel or inverse_cdf, got 'gumble'"):
        load_config("debug", overrides=parse_overrides(["train.sampler=gumble"]))


def test_both_objectives_mask_as_the_official_mask_function():
    # The paper's BERT baseline uses the same mask(): 85% [MASK], 15% kept, 0% random.
    assert (load_config("small").train.mask_token_prob, load_config("small").train.random_token_prob) == (0.85, 0.0)
    mlm = load_config("small", overrides={"train": {"objective": "mlm"}})
    assert (mlm.train.mask_token_prob, mlm.train.random_token_prob) == (0.85, 0.0)
    bert = load_config("small", overrides=parse_overrides(["train.objective=mlm", "train.mask_token_prob=0.8",
                                                           "train.random_token_prob=0.1"]))
    assert (bert.train.mask_token_prob, bert.train.random_token_prob) == (0.8, 0.1)  # BERT's 80/10/10, as an option


def test_round_trip_through_json(tmp_path):
    cfg = load_config("base", overrides={"train": {"seed": 7}})
    again = config_from_dict(json.loads(cfg.to_json()))
    assert again == cfg
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"train": {"batch_size": 64}}))
    assert load_config("small", file=path).train.batch_size == 64


def test_max_predictions_matches_original():
    assert load_config("small").train.max_predictions(128) == 19
    assert load_config("base").train.max_predictions(512) == 79
