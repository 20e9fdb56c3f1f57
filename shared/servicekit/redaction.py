"""SSN and URL-token masking for logs, errors and the CLI's messages (no logging
library imported here, so `csc` starts quickly)."""

from __future__ import annotations

import re

# Nine digits shaped like an SSN: 123-45-6789, 123 45 6789 or 123456789 (the
# two separators alike), not inside a longer run of digits. A dash joined to
# more digits ("1-123-45-6789", "123-45-6789-0") makes a longer run too, but a
# lone dash or a space next to it does not: "ssn-123-45-6789" and lists like
# "123-45-6789 987-65-4321" are masked. A US phone number (312-555-0199, 3-3-4)
# or a ten-digit number is not SSN-shaped and stays as it is.
SSN = re.compile(r"(?<!\d)(?<!\d-)\d{3}([- ]?)\d{2}\1\d{4}(?!\d)(?!-\d)")
SSN_MASK = "***-**-****"


# A one-time token in a URL's query (the password-recovery page is opened with
# ``/recover?token=...``; an access log line carries the whole path).
_QUERY_TOKEN = re.compile(r"([?&](?:token|access_token|refresh_token)=)[^&\s\"']+")


def redact(text: str) -> str:
    """Mask anything shaped like a Social Security number, and a token in a URL query."""
    return _QUERY_TOKEN.sub(r"\1***", SSN.sub(SSN_MASK, text))
