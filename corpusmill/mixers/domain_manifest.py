"""A manifest's ``mix_by: domain`` part: the domain pools, the classifier's model or its labelled examples
(docs/mixing.md, "By domain"); :func:`corpusmill.mixers.manifest.parse_manifest` calls it."""

from __future__ import annotations

import dataclasses
import glob
import os
from typing import Dict, List

from corpusmill.mixers.manifest import (
    DOMAIN_CLASSIFIER_KEYS,
    DOMAIN_LABELS,
    DOMAINS,
    MIX_BY,
    POOL_KEYS,
    SourceSpec,
    _check_keys,
    _err,
    _parse_source,
    _resolve,
)


def parse_domains(path: str, base: str, data: dict, sources: List[SourceSpec], tokenized: bool):
    """``mix_by``, the domain pools and the classifier model of a manifest (docs/mixing.md, "By domain")."""
    mix_by = data.get("mix_by", "source")
    if mix_by not in MIX_BY:
        from corpusmill.core.config import close_matches

        raise _err(
            path, "mix_by", f"expected one of {', '.join(MIX_BY)}, got {mix_by!r}{close_matches(str(mix_by), MIX_BY)}"
        )
    if mix_by == "source":
        for key in ("domains", "domain_classifier"):
            if data.get(key) is not None:
                raise _err(path, key, "only with mix_by: domain")
        labelled = [s for s in sources if s.domain]
        if labelled:
            raise _err(path, labelled[0].field("domain"), "only with mix_by: domain")
        return mix_by, [], None, {}
    if tokenized:
        raise _err(
            path,
            "mix_by",
            "domain with tokens_from is not supported: the domains are set when the "
            "documents are tokenized; mix that run's domains by naming them as sources",
        )
    for spec in sources:
        for key, value in (
            ("weight", spec.weight),
            ("epochs", spec.epochs),
            ("holdout", spec.holdout or None),
            ("holdout_tokens", spec.holdout_tokens),
        ):
            if value is not None:
                raise _err(
                    path,
                    spec.field(key),
                    f"with mix_by: domain, '{key}' goes on the domains (domains.<name>.{key}), not on a source",
                )
    raw = data.get("domains")
    if not isinstance(raw, dict) or not raw:
        raise _err(
            path,
            "domains",
            f"expected a mapping of domain -> {{weight, epochs, holdout}}; the domains: {', '.join(DOMAINS)}",
        )
    domains = []
    for name, value in raw.items():
        field = f"domains.{name}"
        if name not in DOMAINS:
            from corpusmill.core.config import close_matches

            raise _err(
                path, field, f"not a domain; expected one of {', '.join(DOMAINS)}{close_matches(str(name), DOMAINS)}"
            )
        if not isinstance(value, dict):
            raise _err(path, field, "expected a mapping: {weight, epochs, holdout}")
        _check_keys(path, f"{field}.", value, POOL_KEYS)
        domains.append(
            dataclasses.replace(_parse_source(path, base, str(name), value, tokenized=True), section="domains")
        )
    cls = data.get("domain_classifier") or {}
    if not isinstance(cls, dict):
        raise _err(path, "domain_classifier", "expected a mapping: {model: PATH} or {examples: {LABEL: [FILES]}}")
    _check_keys(path, "domain_classifier.", cls, DOMAIN_CLASSIFIER_KEYS)
    model = _resolve(base, str(cls["model"])) if cls.get("model") else None
    if model and "://" not in model and not os.path.isfile(model):
        raise _err(path, "domain_classifier.model", f"{model} does not exist; remove the field to train one")
    examples = _domain_examples(path, base, cls.get("examples"))
    if model and examples:
        raise _err(path, "domain_classifier.examples", "a given model is not trained: name model or examples")
    labels = {s.domain for s in sources if s.domain} | set(examples)
    if model is None and len(labels) < 2:
        raise _err(
            path,
            "sources.*.domain",
            f"the domain classifier is trained from labelled documents: domain_classifier.examples, or "
            f"sources labelled with 'domain' ({', '.join(DOMAIN_LABELS)}); give at least two labels, or "
            f"name a model in domain_classifier.model",
        )
    return mix_by, domains, model, examples


def _domain_examples(path: str, base: str, raw) -> Dict[str, List[str]]:
    """``domain_classifier.examples``: ``{label: [document files or globs]}``, each path checked."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise _err(path, "domain_classifier.examples", "expected a mapping of label -> [document files]")
    out: Dict[str, List[str]] = {}
    for label, files in raw.items():
        field = f"domain_classifier.examples.{label}"
        if label not in DOMAIN_LABELS:
            from corpusmill.core.config import close_matches

            raise _err(
                path,
                field,
                f"not a label the classifier learns; expected one of {', '.join(DOMAIN_LABELS)}"
                f"{close_matches(str(label), DOMAIN_LABELS)} (multilingual comes from the language)",
            )
        if isinstance(files, str):
            files = [files]
        if not isinstance(files, list) or not files:
            raise _err(path, field, "expected a list of document files")
        paths = [_resolve(base, str(f)) for f in files]
        for p in paths:
            if "://" not in p and not glob.glob(p):
                raise _err(path, field, f"{p} does not exist")
        out[str(label)] = paths
    return out
