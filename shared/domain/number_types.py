"""The phonenumbers.PhoneNumberType names the OUTBOUND_BLOCKED_NUMBER_TYPES setting may block,
and how we say them: in a module of its own, so the start-up check of that setting needs no
more (the policy itself is shared/domain/destinations.py)."""

from __future__ import annotations

NUMBER_TYPES = {
    "PREMIUM_RATE": "premium-rate",
    "SHARED_COST": "shared-cost",
    "TOLL_FREE": "toll-free",
    "VOIP": "VoIP",
    "PERSONAL_NUMBER": "personal",
    "PAGER": "pager",
    "UAN": "universal access",
    "VOICEMAIL": "voicemail",
    "FIXED_LINE": "fixed-line",
    "MOBILE": "mobile",
    "FIXED_LINE_OR_MOBILE": "fixed-line or mobile",
}
