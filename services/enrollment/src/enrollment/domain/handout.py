"""The printable hand-out for a new customer: username, temporary password, where to
sign in, and that the password must be changed at the first sign-in. Staff print
it, so nobody has to sign in as the customer. Plain HTML, every value escaped."""

from __future__ import annotations

from datetime import datetime
from html import escape

_STYLE = """
body { font-family: Arial, Helvetica, sans-serif; margin: 2.5rem; color: #111; }
h1 { font-size: 1.6rem; margin-bottom: .25rem; }
.box { border: 2px solid #111; padding: 1rem 1.25rem; margin: 1.25rem 0; max-width: 34rem; }
dt { font-weight: bold; margin-top: .6rem; }
dd { margin: .15rem 0 0 0; font-family: "Courier New", monospace; font-size: 1.35rem;
     letter-spacing: .08rem; }
ol li { margin-bottom: .4rem; }
.note { font-size: .9rem; color: #333; max-width: 40rem; }
@media print { .noprint { display: none; } body { margin: 1rem; } }
"""


def _when(value: str | None) -> str | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value).strftime("%B %d, %Y")
    except ValueError:
        return None


def render(
    *, first_name: str, last_name: str, username: str | None, temporary_password: str | None,
    password_expires_at: str | None, signin_url: str, institution: str,
) -> str:
    name = escape(f"{first_name} {last_name}")
    url = escape(signin_url)
    expires = _when(password_expires_at)
    if temporary_password:
        password_block = (
            f"<dt>Temporary password</dt><dd>{escape(temporary_password)}</dd>"
            + (f"<dt>Use it before</dt><dd>{escape(expires)}</dd>" if expires else "")
        )
        steps = (
            f"<li>Go to <strong>{url}</strong> on any computer or phone.</li>"
            "<li>Sign in with the username and temporary password above.</li>"
            "<li>You will be asked to choose a new password right away. Pick a long "
            "passphrase (at least 15 characters) that only you know.</li>"
            "<li>From then on, sign in with your username and your new password.</li>"
        )
    else:
        password_block = "<dt>Password</dt><dd>Use the password you already have.</dd>"  # noqa: S105
        steps = (
            f"<li>Go to <strong>{url}</strong> on any computer or phone.</li>"
            "<li>Sign in with the username above and your own password.</li>"
            "<li>Forgot it? Ask your case worker for a temporary password; you will "
            "choose a new one at your first sign-in.</li>"
        )
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="robots" content="noindex, nofollow">
<title>Your Illinois workNet account</title>
<style>{_STYLE}</style>
</head>
<body>
<h1>Your Illinois workNet account</h1>
<p>Prepared for <strong>{name}</strong> &middot; Returning Citizens, {escape(institution)}</p>
<div class="box">
<dl>
<dt>Username</dt><dd>{escape(username or "(ask your case worker)")}</dd>
{password_block}
<dt>Sign in at</dt><dd>{url}</dd>
</dl>
</div>
<h2>How to sign in</h2>
<ol>{steps}</ol>
<p class="note">Keep this page somewhere safe and do not share your password. Nobody
from the program will ask you for it. Your case worker never needs to sign in as
you: if you cannot get online, they can help you with the site itself.</p>
<p class="noprint"><button onclick="window.print()">Print this page</button></p>
</body>
</html>
"""
