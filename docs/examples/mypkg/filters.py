from corpusmill.filters.base import Filter, drop, keep


class MaxDigitShare(Filter):
    """Drop documents where more than a fifth of the characters are digits (tables of numbers)."""

    name = "max_digit_share"
    # the report shows the share of every document, kept and dropped, against the threshold
    scores = ("digit_share",)
    bins = {"digit_share": (0.0, 1.0, 20, False)}  # (low, high, number of bins, log scale)

    def __init__(self, max_share: float = 0.2):
        self.max_share = max_share

    def thresholds(self):
        return {"digit_share": self.max_share}

    def __call__(self, doc):
        share = sum(c.isdigit() for c in doc.text) / max(1, len(doc.text))
        measures = {"digit_share": share}
        return (
            drop("too_many_digits", doc, measures=measures) if share > self.max_share else keep(doc, measures=measures)
        )
