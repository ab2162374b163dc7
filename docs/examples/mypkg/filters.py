from corpusmill.filters.base import Filter, drop, keep


class MaxDigitShare(Filter):
    """Drop documents where more than a fifth of the characters are digits (tables of numbers)."""

    name = "max_digit_share"

    def __init__(self, max_share: float = 0.2):
        self.max_share = max_share

    def __call__(self, doc):
        digits = sum(c.isdigit() for c in doc.text)
        return drop("too_many_digits", doc) if digits > self.max_share * max(1, len(doc.text)) else keep(doc)
