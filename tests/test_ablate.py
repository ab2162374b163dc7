"""`corpusmill ablate` (issue 30): a variant fed a corrupted source (each Wikipedia extract's words shuffled)
comes out measurably worse than the base on the shared held-out documents; the table's statistics are the
runs'; a rerun after losing a finished run gives the same numbers to the last digit."""

from __future__ import annotations

import json
import math
import os

import pytest
import yaml
from helpers import DATA

from corpusmill.cli import main as cli_main
from corpusmill.core.significance import mean_std, paired_t

pytestmark = pytest.mark.usefixtures("torch_one_thread")


def _write(tmp_path):
    manifest = {
        "name": "ablate-test",
        "seed": 7,
        "seq_len": 64,
        "budget_tokens": 120_000,
        "tokenizer": {"vocab_size": 1000, "sample_chars": 300_000},
        "shards": {"rows_per_shard": 1000, "batch_rows": 64, "pack_group_tokens": 200_000},
        "sources": {
            "wiki_en": {"weight": 0.7, "documents": os.path.join(DATA, "mixing", "wiki_en"), "holdout": 0.2},
            "code": {"weight": 0.3, "documents": os.path.join(DATA, "mixing", "code")},
        },
    }
    (tmp_path / "m.yaml").write_text(yaml.safe_dump(manifest))
    spec = {
        "base": "m.yaml",
        "model": "tiny",
        "steps": 60,
        "batch_rows": 16,
        "seeds": [1, 2],
        "variants": {"shuffled": {"corrupt": {"wiki_en": "shuffle_words"}}},
    }
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
    return str(tmp_path / "spec.yaml")


def test_a_corrupted_source_is_measurably_worse_and_the_numbers_are_the_runs(tmp_path, capsys):
    spec = _write(tmp_path)
    out = tmp_path / "out"
    assert cli_main(["ablate", spec, "--output", str(out)]) == 0
    report = json.loads((out / "ablate.json").read_text())
    table, runs = report["table"], report["runs"]
    assert set(table) == {"base", "shuffled"} and report["held_out"] == {
        "wiki_en": "variants/base/run/shards/eval/wiki_en"
    }
    # every model is scored on the same held-out rows, which neither variant trains on
    tokens = {r["held_out"]["wiki_en"]["tokens"] for rs in runs.values() for r in rs}
    from corpusmill.tokenize import ShardDataset

    ev = ShardDataset(str(out / report["held_out"]["wiki_en"]))
    padding = sum(int(e.get("padding", 0)) for e in ev.shard_entries)  # the filled-up tail is not scored
    assert len(tokens) == 1 and tokens.pop() == len(ev) * ev.seq_len - padding > 1000
    assert table["base"]["eval_seen_in_training"] == 0.0 and table["shuffled"]["eval_seen_in_training"] == 0.0
    # a real effect: worse on every seed, paired by seed, outside the seed noise
    base = {r["seed"]: r["held_out"]["pooled"]["loss"] for r in runs["base"]}
    bad = {r["seed"]: r["held_out"]["pooled"]["loss"] for r in runs["shuffled"]}
    assert all(bad[s] > base[s] for s in base)
    test = table["shuffled"]["sets"]["pooled"]["loss"]["vs_base"]
    assert test["outside_seed_noise"] and test["mean_diff"] > 0
    # the table's statistics are computed from the runs
    for name, rs in runs.items():
        values = [r["held_out"]["pooled"]["loss"] for r in sorted(rs, key=lambda r: r["seed"])]
        mean, std = mean_std(values)
        entry = table[name]["sets"]["pooled"]["loss"]
        assert entry["values"] == values and entry["mean"] == mean and entry["std"] == std
    again = paired_t([base[s] for s in sorted(base)], [bad[s] for s in sorted(bad)])
    assert again["t"] == test["t"] and again["p"] == test["p"]
    assert "outside the seed noise" in capsys.readouterr().out
    page = (out / "ablate.html").read_text()
    assert 'data-variant="shuffled"' in page and "<svg" in page
    # and as the first section of `corpusmill report DIR`, the pooled means as the table has them
    assert cli_main(["report", str(out), "--output", str(tmp_path / "report.html"), "-q"]) == 0
    from lxml import html as lxml_html

    dom = lxml_html.fromstring((tmp_path / "report.html").read_text())
    assert dom.xpath("//h2")[0].get("id") == "ablate"
    cell = dom.xpath('//td[@data-variant="shuffled"][@data-set="pooled"][@data-field="loss"]')[0]
    assert cell.text_content().startswith(f"{table['shuffled']['sets']['pooled']['loss']['mean']:.4f}")
    # a finished run lost (as after a kill): the rerun trains it again, and every number is the same
    os.remove(out / "variants" / "shuffled" / "seed-2" / "result.json")
    assert cli_main(["ablate", spec, "--output", str(out)]) == 0
    assert json.loads((out / "ablate.json").read_text())["table"] == table

    # a mixture law (item 2): 4 mixtures around 0.7/0.3, a linear fit of the held-out loss on the shares,
    # the best predicted mixture trained: the held-out set is Wikipedia's, so more Wikipedia is better
    assert cli_main(["ablate", spec, "--output", str(out), "--mix-search", "3"]) == 2  # 2 shares: 4 at least
    assert "use at least 4" in capsys.readouterr().err
    assert cli_main(["ablate", spec, "--output", str(out), "--mix-search", "4"]) == 0
    s = json.loads((out / "ablate.json").read_text())["mix_search"]
    import numpy as np

    from corpusmill.pipelines.mix_search import fit_linear

    X = np.array([p["shares"] for p in s["points"]])
    y = np.array([p["loss"] for p in s["points"]])
    assert len(y) == 4 and len(set(y.tolist())) == 4 and fit_linear(X, y) == s["fit"]
    assert s["best"]["weights"]["wiki_en"] > 0.7 and s["best"]["measured"] < base[1]
    assert s["best"]["predicted"] == pytest.approx(
        float(np.array(s["best"]["shares"]) @ np.array(s["fit"]["coefficients"]))
    )


def test_the_t_test_against_known_values():
    # Student's t with 2 df: P(|T| >= 4.303) = 0.05; with 10 df: P(|T| >= 2.228) = 0.05
    assert paired_t([0.0, 0.0, 0.0], [1.0, 2.0, 3.0])["p"] == pytest.approx(0.0742, abs=1e-3)
    from corpusmill.core.significance import t_two_sided_p

    assert t_two_sided_p(4.303, 2) == pytest.approx(0.05, abs=1e-4)
    assert t_two_sided_p(2.228, 10) == pytest.approx(0.05, abs=1e-4)
    assert math.isnan(mean_std([1.0])[1]) and paired_t([1.0], [2.0]) is None


def test_a_mistyped_variant_key_is_refused_naming_it(tmp_path, capsys):
    spec = _write(tmp_path)
    data = yaml.safe_load(open(spec))
    data["variants"]["shuffled"] = {"set": {"sources.wiki_en.wieght": 0.5}}
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(data))
    assert cli_main(["ablate", str(tmp_path / "bad.yaml"), "--output", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err  # refused before any recipe ran, by the manifest's own check
    assert "variants.shuffled: sources.wiki_en.wieght" in err and "weight" in err, err
    assert not os.path.exists(tmp_path / "o" / "variants" / "base" / "run")
    data["variants"]["shuffled"] = {"sett": {}}
    (tmp_path / "bad2.yaml").write_text(yaml.safe_dump(data))
    assert cli_main(["ablate", str(tmp_path / "bad2.yaml"), "--output", str(tmp_path / "o2")]) == 2
    assert "variants.shuffled.sett: unknown key; did you mean set?" in capsys.readouterr().err
