"""``myservice-manage token``: create, list and revoke API tokens.

``token create --user-id U --project-id P --role admin [--role reader] [--expires-in SECONDS]``
prints the new token on stdout, alone (``TOKEN=$(myservice-manage token create ...)``); that
is the only time it is shown: the token file keeps only a hash of its secret.
``token list`` shows every token without secrets; ``token revoke TOKEN_ID`` revokes one;
``token purge`` removes the revoked and expired ones from the file (they stay, listed, until
then).
The token file is ``[auth] token_file`` of the configuration file (``--config-file``).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

from myservice import conf
from myservice.cmd.manage import CommandError
from myservice.suggest import did_you_mean
from myservice.tokens import TokenRecord, TokenStore, format_time


def _store(args: argparse.Namespace) -> TokenStore:
    return TokenStore(conf.load(args.config_file).auth.token_file)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a whole number of seconds, got {text!r}"
        ) from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {value}")
    return value


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``token`` command group."""
    parser = subparsers.add_parser("token", help="manage API tokens", description=__doc__)
    commands = parser.add_subparsers(dest="token_command", metavar="ACTION", required=True)

    create = commands.add_parser("create", help="create a token and print it (once)")
    create.add_argument("--user-id", required=True, help="user the token authenticates")
    create.add_argument("--project-id", required=True, help="project of the token")
    create.add_argument(
        "--role",
        dest="roles",
        action="append",
        required=True,
        metavar="ROLE",
        help="role granted (repeatable: --role admin --role reader)",
    )
    create.add_argument(
        "--expires-in",
        type=_positive_int,
        metavar="SECONDS",
        help="lifetime in seconds (default: never expires)",
    )
    create.set_defaults(func=_create)

    listing = commands.add_parser("list", help="list tokens (never their secrets)")
    listing.set_defaults(func=_list)

    revoke = commands.add_parser("revoke", help="revoke a token")
    revoke.add_argument("token_id", metavar="TOKEN_ID", help="id shown by 'token list'")
    revoke.set_defaults(func=_revoke)

    purge = commands.add_parser(
        "purge", help="remove revoked and expired tokens from the token file"
    )
    purge.set_defaults(func=_purge)


def _warn_unknown_roles(roles: Sequence[str]) -> None:
    """Warn (stderr) about roles no built-in policy rule grants anything to (compared without
    case, as the policy does), naming the closest one: roles are free-form (an extension may
    define its own rules), so the token is still created, but ``--role admn`` most likely
    meant ``admin``."""
    from myservice.api import policy

    known = sorted(policy.READ.roles | policy.WRITE.roles)
    for role in roles:
        if role.lower() not in known:
            hint = did_you_mean(role.lower(), known)
            print(
                f"warning: role {role!r} is granted nothing by the built-in policy rules (roles "
                f"{', '.join(known)}){hint}{' ' if hint else '; '}An API extension may use it, "
                "so the token is created anyway.",
                file=sys.stderr,
            )


def _create(args: argparse.Namespace) -> int:
    store = _store(args)
    token, record = store.create(args.user_id, args.project_id, args.roles, args.expires_in)
    print(token)
    _warn_unknown_roles(record.roles)
    expiry = "never expires" if record.expires_at is None else f"expires {_expiry(record)}"
    print(
        f"Created token {record.token_id} for user {record.user_id} in project "
        f"{record.project_id} (roles: {', '.join(record.roles)}; {expiry}) in {store.path}. "
        "It is shown only this once: store it now.",
        file=sys.stderr,
    )
    return 0


def _expiry(record: TokenRecord) -> str:
    return "never" if record.expires_at is None else format_time(record.expires_at)


def _list(args: argparse.Namespace) -> int:
    records = sorted(_store(args).load().values(), key=lambda r: (r.created_at, r.token_id))
    now = time.time()
    rows = [("ID", "USER", "PROJECT", "ROLES", "CREATED", "EXPIRES", "STATUS")]
    for r in records:
        status = "revoked" if r.revoked else ("active" if r.is_valid(now) else "expired")
        rows.append(
            (
                r.token_id,
                r.user_id,
                r.project_id,
                ",".join(r.roles),
                format_time(r.created_at),
                _expiry(r),
                status,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    return 0


def _revoke(args: argparse.Namespace) -> int:
    token_id = args.token_id.partition(".")[0]  # a whole token pasted by mistake: use its id
    if not token_id:
        raise CommandError("TOKEN_ID must not be empty (see 'myservice-manage token list')")
    record = _store(args).revoke(token_id)
    print(f"Token {record.token_id} (user {record.user_id}) is revoked.")
    return 0


def _purge(args: argparse.Namespace) -> int:
    store = _store(args)
    gone = store.purge(time.time())
    for record in gone:
        why = "revoked" if record.revoked else f"expired {_expiry(record)}"
        print(f"Removed token {record.token_id} (user {record.user_id}; {why}).")
    print(f"{len(gone)} token(s) removed from {store.path}.", file=sys.stderr)
    return 0
