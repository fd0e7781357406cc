"""`nlp-ssl push DIR --repo-id USER/NAME`: share a model directory (weights, tokenizer, card) on the Hub.

setup (arguments) -> push (`nlp_ssl.hub.push.push`: token check, create_repo, one commit of the model's own
files) -> print what was uploaded. `--dry-run` lists the files and the card's metadata without a token or a
network call.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="nlp-ssl push", description="upload a model directory (model, tokenizer, "
                                "model card) to the Hugging Face Hub; token from `hf auth login` or HF_TOKEN")
    p.add_argument("model_dir", metavar="DIR", help="a model directory written by nlp-ssl (e.g. runs/quickstart/sst2)")
    p.add_argument("--repo-id", required=True, help="USER/NAME or ORG/NAME of the model repository (created if missing)")
    p.add_argument("--private", action="store_true", help="create the repository private")
    p.add_argument("--revision", default=None, metavar="BRANCH", help="push to this branch (created if missing)")
    p.add_argument("--commit-message", default=None)
    p.add_argument("--include-logs", action="store_true",
                   help="also upload log_history.json, TensorBoard logs, plots and predictions")
    p.add_argument("--dry-run", action="store_true", help="list what would be uploaded and the card's metadata")
    return p


def main(argv: list[str]) -> int:
    """Run `nlp-ssl push`; user errors are raised as `HubError` (the CLI prints them with their exit code)."""
    args = parser().parse_args(argv)
    from nlp_ssl.hub.push import push

    result = push(args.model_dir, args.repo_id, private=args.private, revision=args.revision,
                  commit_message=args.commit_message, include_logs=args.include_logs, dry_run=args.dry_run)
    if result["dry_run"]:
        card = result["card"]
        meta = card.split("---", 2)[1].strip() if card.startswith("---") else ""
        print(f"dry run: would upload {len(result['files'])} file(s) from {args.model_dir} to {args.repo_id}"
              + (f" (branch {args.revision})" if args.revision else "") + (" (private)" if args.private else "") + ":")
        for f in result["files"]:
            size = (Path(args.model_dir) / f).stat().st_size if (Path(args.model_dir) / f).exists() else None
            print(f"  {f}" + (f"  ({_size(size)})" if size is not None else "  (written at upload)"))
        print("model card metadata (README.md):")
        print("\n".join(f"  {line}" for line in meta.splitlines()))
        return 0
    print(f"uploaded {len(result['files'])} file(s) to {result['url']} (commit {result['commit']})")
    return 0
