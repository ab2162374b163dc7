"""Training the CCNet quality models from reference text: the perplexity language model
(SentencePiece + KenLM, :mod:`corpusmill.quality.lm`) and the Wikipedia-reference classifier
(fastText, :mod:`corpusmill.quality.classifier`). Applying them is in :mod:`corpusmill.filters.perplexity`
and :mod:`corpusmill.filters.wiki_classifier`; the commands are in :mod:`corpusmill.pipelines.quality`.
"""
