"""`datapost credentials list|revoke|reseal`: what is stored for whom (metadata only),
revoking, and re-sealing after a master-key rotation."""

from __future__ import annotations

import argparse
import sys

from worker.config import Settings
from worker.store.credentials import PROVIDERS

from .opsview import input_errors, json_flag, operations, table, when
from .output import Output


def register(sub) -> None:
    common = json_flag()
    p = sub.add_parser("credentials", help="list or revoke stored credentials",
                       description="Stored credentials: metadata only (status, version, key id, "
                                   "expiry, PDA domain); tokens are never shown.")
    p.set_defaults(handler=lambda args, settings, out: _usage(p))
    actions = p.add_subparsers(dest="action", metavar="ACTION")

    ls = actions.add_parser("list", parents=[common], help="every stored credential (metadata)",
                            description="Every stored credential: provider, user, status "
                                        "(active, needs_signin, revoked), version, master key "
                                        "id, token expiry, PDA domain or postbox. Nothing is "
                                        "unsealed.")
    ls.add_argument("--provider", choices=PROVIDERS, help="only this provider's credentials")
    ls.set_defaults(handler=run_list)

    revoke = actions.add_parser(
        "revoke", parents=[common], help="delete a user's tokens and mark them revoked",
        description="Delete the user's tokens (the sealed record) and keep a `revoked` entry. "
                    "Queued and retrying jobs for the user then fail at their next attempt "
                    "(no credential; replayable after the user connects again), parked jobs "
                    "stay parked until the user connects again, and new writes are refused. "
                    "A new sign-in replaces the revoked entry.")
    revoke.add_argument("provider", choices=PROVIDERS, metavar="PROVIDER",
                        help=f"one of {', '.join(PROVIDERS)}")
    revoke.add_argument("user", metavar="USER", help="the app user id")
    revoke.set_defaults(handler=run_revoke)

    reseal = actions.add_parser(
        "reseal", parents=[common], help="re-seal every credential under the current master key",
        description="After a master-key rotation (DATAPOST_MASTER_KEY = the new key, "
                    "DATAPOST_MASTER_KEY_PREVIOUS = the old one): re-seal every stored "
                    "credential under the new key. Safe to run again; records already under "
                    "the current key are left alone.")
    reseal.set_defaults(handler=run_reseal)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


@input_errors
def run_list(args: argparse.Namespace, settings: Settings, out: Output) -> int:
    with operations(settings, out) as ops:
        creds = ops.credentials(args.provider)
    human = "No credentials stored." if not creds else "\n".join([
        table(["PROVIDER", "USER", "STATUS", "VERSION", "EXPIRES", "UPDATED", "KEY ID", "DETAIL"],
              [[c["provider"], c["user"], c["status"], c["version"], when(c["expires_at"]),
                when(c["updated_at"]), c["kid"][:12] if c["kid"] else "-",
                c["pda_domain"] if c["provider"] == "dataswyft"
                else ("postbox" if c["has_postbox"] else "no postbox")] for c in creds]),
        f"{len(creds)} credential(s)"])
    out.result({"credentials": creds, "count": len(creds)}, human=human)
    return 0


@input_errors
def run_revoke(args: argparse.Namespace, settings: Settings, out: Output) -> int:
    with operations(settings, out) as ops:
        done = ops.revoke_credential(args.provider, args.user)
    out.result(done, human=(
        f"Revoked the {args.provider} credential of {args.user}: its tokens are deleted.\n"
        "  Queued and retrying jobs for this user will fail (no credential); replay them "
        "after the user connects again.\n"
        f"  {done['parked_jobs']} parked job(s) stay parked and resume when the user "
        "connects again."))
    return 0


@input_errors
def run_reseal(args: argparse.Namespace, settings: Settings, out: Output) -> int:
    with operations(settings, out) as ops:
        keyring = ops.datapost.stores.keyring
        moved = ops.datapost.stores.vault.reseal()
    out.result({"resealed": moved, "key_id": keyring.current_kid},
               human=f"Re-sealed {moved} credential(s) under key {keyring.current_kid}.")
    return 0
