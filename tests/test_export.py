"""A trained model out of corpusmill (Hugging Face and Meta layouts), text from it, and a Hugging Face
checkpoint in (issue 17). The model is trained here on real text (the stdlib's docstrings) with
grouped-query attention; transformers loads the export as any user would."""

from __future__ import annotations

import dataclasses
import json
import os

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from helpers import DATA  # noqa: E402

from corpusmill.core.errors import CorpusmillError  # noqa: E402
from corpusmill.train.configs import load_config  # noqa: E402
from corpusmill.train.export import export_hf, export_meta, load_meta, load_trained  # noqa: E402
from corpusmill.train.generate import forward_cached, generate  # noqa: E402
from corpusmill.train.loop import train  # noqa: E402
from corpusmill.train.sample import build_sample_shards  # noqa: E402

pytestmark = pytest.mark.usefixtures("torch_one_thread")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    shards = str(root / "shards")
    build_sample_shards(shards, seq_len=64, vocab_size=1024, rows_per_shard=256, max_chars=300_000)
    model, tr = load_config("tiny")
    model = dataclasses.replace(model, n_kv_heads=2, norm_eps=1e-5, rope_theta=500000.0)  # GQA, Llama 3's
    tr = dataclasses.replace(tr, steps=40, eval_every=0, ckpt_every=0, log_every=1000)
    train(model, tr, shards, str(root / "run"), stream=None)
    return root, shards


def _udhr():
    return [json.loads(line)["text"] for line in open(os.path.join(DATA, "udhr.jsonl"), encoding="utf-8")]


def _real_ids(tokenizer, n=64):
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=tokenizer)
    ids = [sp.bos_id()] + sp.encode(" ".join(_udhr()[:20]))
    return torch.tensor([ids[:n], ids[n : 2 * n]])


def test_hugging_face_export_loads_with_from_pretrained_and_gives_the_same_logits(run, tmp_path):
    root, _ = run
    model, cfg, tokenizer, _meta = load_trained(str(root / "run"))
    out = export_hf(model, cfg, tokenizer, str(tmp_path / "hf"))
    hf = transformers.AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32).eval()
    conf = hf.config
    assert (conf.num_key_value_heads, conf.num_attention_heads, conf.rms_norm_eps) == (2, 4, 1e-5)
    assert conf.intermediate_size == cfg.ffn_hidden and not conf.tie_word_embeddings
    assert getattr(conf, "rope_theta", None) or conf.rope_parameters["rope_theta"] == 500000.0
    ids = _real_ids(tokenizer)
    with torch.no_grad():
        diff = (model(ids) - hf(ids).logits).abs().max().item()
    assert diff <= 1e-4
    # the tokenizer: the same ids as SentencePiece on real text in 72 languages (byte fallback included)
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=tokenizer)
    tok = transformers.AutoTokenizer.from_pretrained(out)
    texts = _udhr()
    assert len(texts) == 72
    for text in texts:
        ids = sp.encode(text)
        assert tok(text, add_special_tokens=False).input_ids == ids, text[:40]
        assert tok.decode(ids) == sp.decode(ids)
    assert tok("Human rights").input_ids[0] == sp.bos_id()  # BOS added, as in training rows
    # generation through transformers runs on the export
    gen = hf.generate(torch.tensor([[sp.bos_id()] + sp.encode("The module")]), max_new_tokens=8, do_sample=False)
    assert gen.shape[1] == 1 + len(sp.encode("The module")) + 8


def test_meta_export_is_the_reference_layout(run, tmp_path):
    root, _ = run
    model, cfg, tokenizer, _meta = load_trained(str(root / "run"))
    out = export_meta(model, cfg, tokenizer, str(tmp_path / "meta"))
    assert sorted(os.listdir(out)) == [".corpusmill", "consolidated.00.pth", "params.json", "tokenizer.model"]
    params = json.load(open(os.path.join(out, "params.json")))
    assert (params["dim"], params["n_heads"], params["n_kv_heads"], params["norm_eps"]) == (64, 4, 2, 1e-5)
    keys = torch.load(os.path.join(out, "consolidated.00.pth"), weights_only=True).keys()
    assert {
        "tok_embeddings.weight",
        "layers.0.attention.wq.weight",
        "layers.1.feed_forward.w3.weight",
        "norm.weight",
        "output.weight",
    } <= set(keys)
    ids = _real_ids(tokenizer)
    with torch.no_grad():
        assert torch.equal(load_meta(out)(ids), model(ids))
    with pytest.raises(CorpusmillError, match="is not empty"):
        export_meta(model, cfg, tokenizer, out)


def test_export_at_real_sizes_dtype_shards_modes_and_model_parallel_files(run, tmp_path):
    """Issue 29, item 5: --dtype, safetensors sharded with an index as save_pretrained writes them, files
    0644 (safetensors included), and Meta's one consolidated.NN.pth per model-parallel rank."""
    import stat

    from corpusmill.train.export_weights import merge_meta_ranks

    root, _ = run
    model, cfg, tokenizer, _meta = load_trained(str(root / "run"))
    out = export_hf(model, cfg, tokenizer, str(tmp_path / "hf"), dtype="bf16", max_shard_bytes=100_000)
    index = json.load(open(os.path.join(out, "model.safetensors.index.json")))
    files = sorted(set(index["weight_map"].values()))
    assert len(files) > 2 and files[0] == f"model-00001-of-{len(files):05d}.safetensors"
    assert sorted(f for f in os.listdir(out) if f.endswith(".safetensors")) == files
    assert index["metadata"]["total_size"] == 2 * cfg.num_params()  # bf16: two bytes a weight
    hf = transformers.AutoModelForCausalLM.from_pretrained(out)
    assert hf.dtype == torch.bfloat16 and json.load(open(os.path.join(out, "config.json")))["torch_dtype"] == "bfloat16"
    ids = _real_ids(tokenizer)
    with torch.no_grad():
        ours, theirs = model(ids), hf.float()(ids).logits
    assert (ours.argmax(-1) == theirs.argmax(-1)).float().mean() > 0.9  # bf16 weights: the same predictions, mostly
    modes = {f: stat.S_IMODE(os.stat(os.path.join(out, f)).st_mode) for f in os.listdir(out) if not f.startswith(".")}
    assert set(modes.values()) == {0o644}, modes

    meta = export_meta(model, cfg, tokenizer, str(tmp_path / "meta"), mp=2, dtype="bf16")
    parts = [torch.load(os.path.join(meta, f"consolidated.{r:02d}.pth"), weights_only=True) for r in range(2)]
    assert not os.path.exists(os.path.join(meta, "consolidated.02.pth"))
    wq = parts[0]["layers.0.attention.wq.weight"]
    assert wq.dtype == torch.bfloat16 and wq.shape[0] == cfg.dim // 2  # column-parallel: half the rows
    assert parts[0]["layers.0.attention.wo.weight"].shape[1] == cfg.dim // 2  # row-parallel: half the columns
    merged = merge_meta_ranks(parts)
    for name, tensor in model.state_dict().items():
        assert torch.equal(merged[name], tensor.to(torch.bfloat16)), name
    with pytest.raises(CorpusmillError, match="--mp 3: Meta's model-parallel layers split n_heads 4"):
        export_meta(model, cfg, tokenizer, str(tmp_path / "meta3"), mp=3)


def test_init_from_a_hugging_face_checkpoint(run, tmp_path):
    """continued pretraining: the run starts from the HF weights (lr 0: they stay exactly those)."""
    root, shards = run
    model, cfg, tokenizer, _meta = load_trained(str(root / "run"))
    hf_dir = export_hf(model, cfg, tokenizer, str(tmp_path / "hf"))
    from corpusmill.cli import main as cli_main

    args = [
        "train",
        "--model",
        "tiny",
        "--data",
        shards,
        "--steps",
        "2",
        "--lr",
        "0",
        "--warmup",
        "0",
        "--log-every",
        "1000",
        "--ckpt-every",
        "0",
        "--eval-every",
        "0",
        "--init-from",
        hf_dir,
    ]
    assert cli_main(args + ["--output", str(tmp_path / "cont")]) == 0
    again, cfg2, _, meta = load_trained(str(tmp_path / "cont"))
    assert (cfg2.n_kv_heads, cfg2.rope_theta, cfg2.norm_eps) == (2, 500000.0, 1e-5)
    assert meta["data"]["init_from"] == os.path.abspath(hf_dir)
    for (name, a), b in zip(model.state_dict().items(), again.state_dict().values()):
        assert torch.equal(a, b), name
    # loud: a model option beside --init-from, another tokenizer
    assert cli_main(args + ["--output", str(tmp_path / "x"), "--rope-theta", "10000"]) == 2
    other = tmp_path / "other-tok"
    build_sample_shards(str(other), seq_len=64, vocab_size=1024, rows_per_shard=256, max_chars=100_000)
    with pytest.raises(CorpusmillError, match="not the one .* was made with"):
        m, t = load_config("tiny")
        train(
            dataclasses.replace(m, **{k: getattr(cfg, k) for k in ("n_kv_heads", "norm_eps", "rope_theta")}),
            dataclasses.replace(t, steps=1),
            str(other),
            str(tmp_path / "y"),
            init_from=hf_dir,
            stream=None,
        )


def test_cached_generation_equals_step_by_step_argmax(run):
    root, _ = run
    model, _cfg, tokenizer, _meta = load_trained(str(root / "run"))
    prompt = _real_ids(tokenizer)[0, :12].tolist()
    cached = generate(model, prompt, 30)
    plain = generate(model, prompt, 30, use_cache=False)
    assert cached == plain and len(cached) == 42
    # the cached logits are the full forward's, position by position
    cache = [None] * len(model.layers)
    ids = torch.tensor([cached])
    step = [forward_cached(model, ids[:, :12], cache, 0)]
    step += [forward_cached(model, ids[:, i : i + 1], cache, i) for i in range(12, 42)]
    with torch.no_grad():
        torch.testing.assert_close(torch.cat(step, dim=1), model(ids), atol=1e-5, rtol=1e-5)
    # sampling: the same seed, the same text; top-p 1e-6 is greedy
    a = generate(model, prompt, 20, temperature=0.9, top_p=0.9, seed=3)
    assert a == generate(model, prompt, 20, temperature=0.9, top_p=0.9, seed=3)
    assert generate(model, prompt, 20, temperature=0.9, top_p=1e-6, seed=3) == generate(model, prompt, 20)


def test_sample_and_export_commands(run, tmp_path, capsys):
    from corpusmill.cli import main as cli_main

    root, _ = run
    assert cli_main(["sample", str(root / "run"), "--prompt", "The module", "--max-new-tokens", "10"]) == 0
    assert capsys.readouterr().out.startswith("The module")
    assert cli_main(["export", str(root / "run"), "--to", "hf", "--output", str(tmp_path / "m")]) == 0
    assert "model.safetensors" in os.listdir(tmp_path / "m")
    assert cli_main(["export", str(tmp_path / "none"), "--to", "hf", "--output", str(tmp_path / "n")]) == 2
    assert "no checkpoint" in capsys.readouterr().err
    assert cli_main(["sample", str(root / "run"), "--prompt", "x", "--top-p", "0"]) == 2


def test_sample_slides_past_the_context_and_never_stops_early(run, capsys):
    """Issue 29, item 4: a prompt near or past the model's context gave fewer tokens, or none, silently."""
    root, _ = run
    model, _cfg, tokenizer, _meta = load_trained(str(root / "run"))
    context = int(model.rope.shape[0])
    text = _real_ids(tokenizer).flatten().tolist()
    long_prompt = text[: context + 40]  # past the context already
    out = generate(model, long_prompt, 30)
    assert len(out) == len(long_prompt) + 30 and out[: len(long_prompt)] == long_prompt
    # each token past the context is the argmax over the last context - 1 tokens
    with torch.no_grad():
        window = out[len(long_prompt) + 4 - (context - 1) : len(long_prompt) + 4]
        assert int(model(torch.tensor([window]))[0, -1].argmax()) == out[len(long_prompt) + 4]
    near = text[: context - 5]  # crosses the context while generating: cached, then sliding
    assert len(generate(model, near, 30)) == len(near) + 30
    from corpusmill.cli import main as cli_main
    from corpusmill.tokenize.tokenizer import load_tokenizer

    tok = load_tokenizer(tokenizer)
    prompt = tok.decode(long_prompt[1:])
    assert cli_main(["sample", str(root / "run"), "--prompt", prompt, "--max-new-tokens", "20"]) == 0
    captured = capsys.readouterr()
    assert f"context of {context}" in captured.err and len(captured.out) > len(prompt) - 40


def test_init_from_reads_both_rope_layouts_and_refuses_a_scaled_rope(run, tmp_path):
    """Issue 29: transformers 5 writes rope_parameters {rope_theta, rope_type} instead of a top-level
    rope_theta; --init-from took 10000 silently. Both layouts give the model's 500000; another rope_type
    is refused."""
    import shutil

    from corpusmill.train.export import hf_model_config

    root, _ = run
    model, cfg, tokenizer, _meta = load_trained(str(root / "run"))
    hf_dir = export_hf(model, cfg, tokenizer, str(tmp_path / "hf"))
    assert hf_model_config(hf_dir).rope_theta == 500000.0  # transformers 4's layout
    v5 = tmp_path / "v5"
    shutil.copytree(hf_dir, v5)
    config = json.loads((v5 / "config.json").read_text())
    config["rope_parameters"] = {"rope_theta": config.pop("rope_theta"), "rope_type": "default"}
    (v5 / "config.json").write_text(json.dumps(config))
    assert hf_model_config(str(v5)).rope_theta == 500000.0
    config["rope_parameters"]["rope_type"] = "yarn"
    (v5 / "config.json").write_text(json.dumps(config))
    with pytest.raises(CorpusmillError, match="rope_type 'yarn' is not supported"):
        hf_model_config(str(v5))


# Meta's ModelArgs of each release, as their model.py declares them (LLaMA 1: facebookresearch/llama v1;
# Llama 2: meta-llama/llama; Llama 3: meta-llama/llama3): Llama.build calls
# ModelArgs(max_seq_len=..., max_batch_size=..., **params)
META_MODEL_ARGS = {
    1: ["dim", "n_layers", "n_heads", "vocab_size", "multiple_of", "norm_eps", "max_batch_size", "max_seq_len"],
    2: [
        "dim",
        "n_layers",
        "n_heads",
        "n_kv_heads",
        "vocab_size",
        "multiple_of",
        "ffn_dim_multiplier",
        "norm_eps",
        "max_batch_size",
        "max_seq_len",
    ],
    3: [
        "dim",
        "n_layers",
        "n_heads",
        "n_kv_heads",
        "vocab_size",
        "multiple_of",
        "ffn_dim_multiplier",
        "norm_eps",
        "rope_theta",
        "max_batch_size",
        "max_seq_len",
    ],
}


def test_params_json_fits_each_meta_release(run, tmp_path):
    """Issue 29: Meta's Llama.build raised "multiple values for keyword argument 'max_seq_len'" on every
    release, and LLaMA 1/2 rejected the keys they do not have. params.json holds exactly the keys of the
    release asked (by default the oldest that runs the model); a model a release cannot run is refused."""
    import dataclasses as dc

    from corpusmill.train.model import Transformer

    def model_args(release):
        return dc.make_dataclass(f"ModelArgs{release}", [(f, object, None) for f in META_MODEL_ARGS[release]])

    root, _ = run
    model, cfg, tokenizer, _meta = load_trained(str(root / "run"))  # GQA and RoPE base 500000: Llama 3's
    out = export_meta(model, cfg, tokenizer, str(tmp_path / "meta"))
    params = json.load(open(os.path.join(out, "params.json")))
    model_args(3)(max_seq_len=2048, max_batch_size=32, **params)
    for release in (1, 2):
        with pytest.raises(CorpusmillError, match=f"--meta-release {release}: its ModelArgs has no"):
            export_meta(model, cfg, tokenizer, str(tmp_path / f"m{release}"), release=release)
    plain = dc.replace(cfg, n_kv_heads=None, rope_theta=10000.0)  # LLaMA 1's architecture
    for release in (1, 2, 3):
        path = export_meta(Transformer(plain), plain, tokenizer, str(tmp_path / f"p{release}"), release=release)
        params = json.load(open(os.path.join(path, "params.json")))
        assert set(params) == set(META_MODEL_ARGS[release]) - {"max_seq_len", "max_batch_size"}
        model_args(release)(max_seq_len=2048, max_batch_size=32, **params)  # what Llama.build does
        if release > 1:  # the keys a later release adds are what LLaMA 1's ModelArgs rejects
            with pytest.raises(TypeError):
                model_args(1)(max_seq_len=2048, max_batch_size=32, **params)
