"""The LLaMA model: shapes and parameter counts, RoPE, document masking, configs, schedule, data order."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from corpusmill.core.errors import CorpusmillError  # noqa: E402
from corpusmill.train.configs import NAMED, ModelConfig, load_config  # noqa: E402
from corpusmill.train.data import DataOrder, FeistelPermutation, rank_slice  # noqa: E402
from corpusmill.train.loop import lr_factor, param_groups  # noqa: E402
from corpusmill.train.model import (  # noqa: E402
    RMSNorm,
    Transformer,
    apply_rope,
    build_on_meta,
    count_params,
    rope_tables,
)

pytestmark = pytest.mark.usefixtures("torch_one_thread")


def _tiny(**kw):
    cfg = dict(dim=64, n_layers=2, n_heads=4, vocab_size=97, multiple_of=16, max_seq_len=32)
    cfg.update(kw)
    model = Transformer(ModelConfig(**cfg))
    model.init_weights(generator=torch.Generator().manual_seed(0))
    return model.eval()


def test_7b_has_6_7b_parameters_and_ffn_11008():
    cfg = NAMED["7B"][0]
    model = build_on_meta(cfg)  # meta tensors: no memory
    assert all(p.is_meta for p in model.parameters())
    n = count_params(model)
    assert n == cfg.num_params() == 6_738_415_616  # "6.7B"
    assert model.layers[0].feed_forward.w1.weight.shape == (11008, 4096)
    assert cfg.ffn_hidden == 11008
    assert model.output.weight is not model.tok_embeddings.weight  # untied
    assert not any(name.endswith("bias") for name, _ in model.named_parameters())


def test_paper_sizes():
    expect = {"13B": (13.0e9, 13824, 3.0e-4), "33B": (32.5e9, 17920, 1.5e-4), "65B": (65.2e9, 22016, 1.5e-4)}
    for name, (params, ffn, lr) in expect.items():
        model_cfg, train_cfg = NAMED[name]
        assert model_cfg.ffn_hidden == ffn
        assert abs(model_cfg.num_params() - params) / params < 0.002, name
        assert train_cfg.lr == lr and train_cfg.batch_tokens == 4 * 2**20
    assert NAMED["7B"][1].lr == 3.0e-4 and NAMED["7B"][1].warmup_steps == 2000


def test_gqa_and_ffn_multiplier_counts():
    cfg = ModelConfig(
        dim=128,
        n_layers=2,
        n_heads=8,
        n_kv_heads=2,
        vocab_size=50,
        multiple_of=32,
        ffn_dim_multiplier=1.3,
        max_seq_len=16,
    )
    model = Transformer(cfg)
    assert count_params(model) == cfg.num_params()
    assert model.layers[0].attention.wk.weight.shape == (2 * 16, 128)
    assert cfg.ffn_hidden == 32 * math.ceil(int(1.3 * int(8 * 128 / 3)) / 32)
    model.init_weights()
    out = model(torch.randint(0, 50, (2, 16)))
    assert out.shape == (2, 16, 50)


def test_rmsnorm_float32_then_cast_back():
    # as the reference: normalise in float32, cast back to the input dtype, then scale by the gain
    norm = RMSNorm(8, eps=1e-6).to(torch.bfloat16)
    with torch.no_grad():
        norm.weight.copy_(torch.linspace(0.5, 2.0, 8))
    x = (torch.randn(3, 8) * 100).to(torch.bfloat16)
    y = norm(x)
    assert y.dtype == torch.bfloat16
    xf = x.float()
    ref = (xf / torch.sqrt(xf.pow(2).mean(-1, keepdim=True) + 1e-6)).to(torch.bfloat16) * norm.weight
    assert torch.equal(y, ref)


def test_rope_depends_only_on_relative_position():
    torch.manual_seed(0)
    head_dim, T = 16, 64
    tables = rope_tables(head_dim, T, theta=10000.0)
    q = torch.randn(head_dim, dtype=torch.float64).float()
    k = torch.randn(head_dim, dtype=torch.float64).float()
    # the same q at every position, the same k at every position
    qs = apply_rope(q.expand(1, T, 1, head_dim).contiguous(), tables)[0, :, 0]
    ks = apply_rope(k.expand(1, T, 1, head_dim).contiguous(), tables)[0, :, 0]
    scores = qs.double() @ ks.double().T  # scores[m, n] = <R_m q, R_n k>
    for offset in (0, 1, 5, 17):
        for shift in (1, 7, 30):
            a = torch.diagonal(scores, offset=-offset)[: T - offset - shift]
            b = torch.diagonal(scores, offset=-offset)[shift : T - offset]
            torch.testing.assert_close(a, b, rtol=0, atol=1e-4)
    # and it does depend on the distance
    assert abs(scores[10, 0] - scores[10, 9]) > 1e-3
    # norms are preserved (a rotation)
    torch.testing.assert_close(qs.norm(dim=-1), q.norm().expand(T), rtol=1e-5, atol=1e-5)
    # Llama 3 theta changes the angles
    assert not torch.allclose(tables, rope_tables(head_dim, T, theta=500000.0))


def test_document_masking_isolates_documents():
    model = _tiny(doc_mask=True)
    T = 24
    g = torch.Generator().manual_seed(1)
    tokens = torch.randint(3, 97, (1, T), generator=g)
    starts = torch.zeros(1, T, dtype=torch.bool)
    starts[0, [0, 9, 16]] = True  # documents [0, 9), [9, 16), [16, 24)
    changed = tokens.clone()
    changed[0, 2:9] = torch.randint(3, 97, (7,), generator=g)  # rewrite the first document
    with torch.no_grad():
        out, out2 = model(tokens, starts), model(changed, starts)
        plain, plain2 = model(tokens), model(changed)
    torch.testing.assert_close(out[0, 9:], out2[0, 9:], rtol=0, atol=1e-6)  # later documents unchanged
    assert not torch.allclose(out[0, 2:9], out2[0, 2:9])
    assert not torch.allclose(plain[0, 9:], plain2[0, 9:])  # without the mask they do see it
    # a row that begins inside a document: that fragment is a document of its own
    starts2 = torch.zeros(1, T, dtype=torch.bool)
    starts2[0, 5] = True
    changed2 = tokens.clone()
    changed2[0, 0:5] = torch.randint(3, 97, (5,), generator=g)
    with torch.no_grad():
        torch.testing.assert_close(model(tokens, starts2)[0, 5:], model(changed2, starts2)[0, 5:], rtol=0, atol=1e-6)


def test_document_mask_on_first_document_equals_causal_model():
    model = _tiny()
    tokens = torch.randint(3, 97, (2, 20), generator=torch.Generator().manual_seed(2))
    starts = torch.zeros(2, 20, dtype=torch.bool)
    starts[:, 0] = True  # one document per row: the mask is plain causal attention
    with torch.no_grad():
        torch.testing.assert_close(model(tokens, starts), model(tokens), rtol=1e-5, atol=1e-5)


def test_causality():
    model = _tiny()
    tokens = torch.randint(3, 97, (1, 16), generator=torch.Generator().manual_seed(3))
    later = tokens.clone()
    later[0, 10:] = 5
    with torch.no_grad():
        torch.testing.assert_close(model(tokens)[0, :10], model(later)[0, :10], rtol=0, atol=1e-6)


def test_activation_checkpointing_same_gradients():
    model = _tiny().train()
    tokens = torch.randint(3, 97, (2, 16), generator=torch.Generator().manual_seed(4))
    model.loss(tokens[:, :-1], tokens[:, 1:]).backward()
    ref = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    model.activation_checkpointing = True
    model.loss(tokens[:, :-1], tokens[:, 1:]).backward()
    for a, p in zip(ref, model.parameters()):
        torch.testing.assert_close(a, p.grad, rtol=1e-5, atol=1e-6)


def test_weight_decay_groups():
    model = _tiny()
    decay, no_decay = param_groups(model, 0.1, decay_embeddings=True)
    names = {id(p): n for n, p in model.named_parameters()}
    assert all(p.ndim == 2 for p in decay["params"])
    assert {names[id(p)] for p in no_decay["params"]} == {n for n, p in model.named_parameters() if "norm" in n}
    assert no_decay["weight_decay"] == 0.0 and decay["weight_decay"] == 0.1
    decay2, no_decay2 = param_groups(model, 0.1, decay_embeddings=False)
    assert "tok_embeddings.weight" in {names[id(p)] for p in no_decay2["params"]}


def test_lr_schedule_warmup_then_cosine_to_ten_percent():
    f = [lr_factor(s, 2000, 10000, 0.1) for s in range(12000)]
    assert f[0] == pytest.approx(1 / 2000) and f[1999] == pytest.approx(1.0)
    assert all(a < b for a, b in zip(f[:1999], f[1:2000]))  # linear warmup
    assert f[2000] == pytest.approx(1.0)
    assert f[6000] == pytest.approx(0.55)  # halfway down the cosine
    assert f[10000] == pytest.approx(0.1) and f[11999] == pytest.approx(0.1)
    assert all(a >= b - 1e-12 for a, b in zip(f[2000:], f[2001:]))


def test_data_order_is_a_function_of_seed_and_position():
    n = 1000
    perm = FeistelPermutation(n, 123)(np.arange(n))
    assert sorted(perm.tolist()) == list(range(n)) and perm.tolist() != list(range(n))
    order = DataOrder(n, seed=5)
    epoch0 = order.rows(0, n)
    assert sorted(epoch0.tolist()) == list(range(n))  # every row once per epoch
    assert sorted(order.rows(n, n).tolist()) == list(range(n)) and not np.array_equal(order.rows(n, n), epoch0)
    # a global batch is the same however it is computed and split over processes
    G = 48
    batch = DataOrder(n, seed=5).rows(960, G)  # crosses into epoch 1
    np.testing.assert_array_equal(batch, np.concatenate([epoch0[960:], order.rows(n, 8)]))
    for world in (1, 2, 3, 4):
        parts = [batch[slice(*rank_slice(G, r, world))] for r in range(world)]
        np.testing.assert_array_equal(np.concatenate(parts), batch)
    assert not np.array_equal(DataOrder(n, seed=6).rows(0, G), order.rows(0, G))


def test_config_files_and_errors(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(
        json.dumps({"base": "7B", "model": {"rope_theta": 500000.0, "n_kv_heads": 8}, "train": {"lr": 1e-4}})
    )
    model, train = load_config(str(path))
    assert model.dim == 4096 and model.rope_theta == 500000.0 and model.kv_heads == 8 and train.lr == 1e-4
    (tmp_path / "c.yaml").write_text("base: tiny\nmodel:\n  dim: 96\n")
    assert load_config(str(tmp_path / "c.yaml"))[0].dim == 96
    path.write_text(json.dumps({"model": {"dimm": 3}}))
    with pytest.raises(CorpusmillError, match="unknown field.*dimm"):
        load_config(str(path))
    with pytest.raises(CorpusmillError, match="neither a named config"):
        load_config("7b-typo")
    with pytest.raises(CorpusmillError, match="not divisible"):
        ModelConfig(dim=100, n_heads=3).validate()


def test_flex_attention_document_mask_equals_the_dense_mask():
    """Issue 17: the document mask through FlexAttention's block mask (fused when compiled on a GPU; eager
    here) gives the dense mask's logits, on real text packed as the mixer packs it."""
    import dataclasses

    from corpusmill.train.sample import build_sample_shards

    dense = _tiny(doc_mask=True, max_seq_len=64)
    flex = _tiny(doc_mask=True, max_seq_len=64)
    flex.load_state_dict(dense.state_dict())
    dense.cfg = dataclasses.replace(dense.cfg, doc_mask_impl="dense")
    flex.cfg = dataclasses.replace(flex.cfg, doc_mask_impl="flex")
    import json
    import os
    import tempfile

    import sentencepiece as spm

    from corpusmill.tokenize.shards import pack_documents

    with tempfile.TemporaryDirectory() as tmp:  # real text, packed as the mixer packs it: UDHR sentences
        build_sample_shards(tmp, seq_len=64, vocab_size=512, rows_per_shard=256, max_chars=100_000)
        sp = spm.SentencePieceProcessor(model_file=os.path.join(tmp, "tokenizer.model"))
    here = os.path.join(os.path.dirname(__file__), "data", "udhr.jsonl")
    texts = [json.loads(line)["text"] for line in open(here, encoding="utf-8")][:40]
    rows, bounds = pack_documents([t[:60] for t in sp.encode(texts)], 63, 1, 2, vocab_size=512)
    tokens = torch.tensor(rows[:4].astype(np.int64)) % 97
    starts = torch.zeros(4, 64, dtype=torch.bool)
    for i, b in enumerate(bounds[:4]):
        starts[i, list(b)] = True
    assert starts.sum() > 4  # several documents per row
    with torch.no_grad():  # (FlexAttention has no backward on the CPU: there, auto is the dense mask)
        a, b = dense(tokens, starts), flex(tokens, starts)
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    from corpusmill.train.model import use_flex

    assert not use_flex(dense.cfg, torch.device("cpu")) and use_flex(
        dataclasses.replace(dense.cfg, doc_mask_impl="auto"), torch.device("cuda")
    )
