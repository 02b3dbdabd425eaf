"""Phone numbers: E.164 normalisation (§1.1 asks customers to store E.164 in D365)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PhoneNumber:
    """A number as we keep it: E.164 when it parses, otherwise exactly as given."""

    value: str
    valid: bool

    def __str__(self) -> str:
        return self.value


def normalise(raw: str, default_region: str) -> PhoneNumber:
    """E.164 of `raw` read in `default_region` when it has no country code.

    An unparsable or impossible number is kept as given (stripped) and marked invalid: it is
    stored and shown, but identifies nobody.
    """
    import phonenumbers  # imported on first use: not paid for at cold start

    text = (raw or "").strip()
    if text.startswith("4:"):  # an ACS raw id of a phone number
        text = text[2:]
    try:
        parsed = phonenumbers.parse(text, default_region)
    except phonenumbers.NumberParseException:
        return PhoneNumber(text, False)
    if not phonenumbers.is_possible_number(parsed):
        return PhoneNumber(text, False)
    return PhoneNumber(
        phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164), True
    )
