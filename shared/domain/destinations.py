"""Where agents may call or send calls: the outbound-destination policy against toll fraud.

Click-to-dial, a transfer to a number and DND forwarding all make ACS call a number at our
expense, so one stolen agent token must not reach a premium-rate line. The policy allows
countries/regions (empty: any) and blocks number types as `phonenumbers` classifies them.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.domain.number_types import NUMBER_TYPES
from shared.errors import FieldError, Unprocessable


@dataclass(frozen=True)
class DestinationPolicy:
    allowed_regions: frozenset[str]  # ISO 3166 codes; empty: every region
    blocked_types: frozenset[str]  # keys of NUMBER_TYPES

    def refusal(self, e164: str) -> str | None:
        """Why `e164` may not be called, or None when it may."""
        import phonenumbers  # imported on first use: not paid for at cold start

        try:
            parsed = phonenumbers.parse(e164, None)
        except phonenumbers.NumberParseException:
            return "not a valid phone number"
        region = phonenumbers.region_code_for_number(parsed) or "unknown"
        if self.allowed_regions and region not in self.allowed_regions:
            allowed = ", ".join(sorted(self.allowed_regions))
            return f"calls to {region} numbers are not allowed (allowed: {allowed})"
        kind = phonenumbers.number_type(parsed)
        for name in self.blocked_types:
            if getattr(phonenumbers.PhoneNumberType, name, None) == kind:
                return f"{NUMBER_TYPES[name]} numbers are blocked"
        return None

    def check(self, e164: str, *, field: str) -> None:
        """Unprocessable (422) naming `field` and the reason when `e164` is refused."""
        reason = self.refusal(e164)
        if reason is not None:
            raise Unprocessable(
                f"{field}: {reason} (outbound-destination policy)",
                errors=[FieldError(field, reason)],
            )


OPEN = DestinationPolicy(allowed_regions=frozenset(), blocked_types=frozenset())
