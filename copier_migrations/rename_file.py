"""Copier migration: a file the template renamed arrives with its author's edits.

Runs in the project after `copier update` has written the template's file under its new
name and deleted the old one (Copier deletes files that only the old template version
had). The author's version of the old file is in the project's last commit (an update
needs a clean work tree); the template's version of it at the release the project came
from is in the template's history. Git's three-way merge then carries the author's edits
onto the new file. Where the template changed the same lines, the conflict is left inline
with Copier's own labels, so the project's conflict-marker check refuses it until resolved.

    rename_file.py TEMPLATE_DIR FROM_REF TEMPLATE_OLD_PATH OLD_PATH NEW_PATH

TEMPLATE_OLD_PATH is the old file inside the template repository; it must be a file the
template copies verbatim (no .jinja), so that its history is what projects received.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path


def git(*args: str, cwd: Path | str = ".") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, check=False)


def main(argv: list[str]) -> int:
    if len(argv) != 5:
        print(__doc__, file=sys.stderr)
        return 2
    template_dir, from_ref, template_old_path, old_path, new_path = argv
    authored = git("show", f"HEAD:{old_path}")
    if authored.returncode != 0:
        print(f"{old_path} was not in the project's last commit: nothing to carry over")
        return 0
    if git("cat-file", "-e", f"{from_ref}^{{commit}}", cwd=template_dir).returncode != 0:
        print(f"{from_ref} is not a commit of the template at {template_dir}", file=sys.stderr)
        return 1
    old_file = f"{from_ref}:{template_old_path}"
    if git("rev-parse", "-q", "--verify", old_file, cwd=template_dir).returncode != 0:
        # The template did not ship the file at that release: the project's file is the
        # author's own (the project came from a commit that already had the new name, say,
        # and now updates to a tagged release), so there are no edits to carry and it stays.
        print(f"{old_path} is not the template's at {from_ref}: left as it is")
        return 0
    base = git("show", old_file, cwd=template_dir)
    if base.returncode != 0:
        print(base.stderr.decode(), file=sys.stderr)
        return 1
    new = Path(new_path)
    with tempfile.TemporaryDirectory() as tmp:
        base_file, merged = Path(tmp, "base"), Path(tmp, "merged")
        base_file.write_bytes(base.stdout)
        merged.write_bytes(authored.stdout)
        if new.exists():
            # merge-file folds base->template changes into the author's version in place.
            result = git(
                "merge-file",
                "-L",
                "before updating",
                "-L",
                "last update",
                "-L",
                "after updating",
                str(merged),
                str(base_file),
                str(new),
            )
            if result.returncode > 127:  # an error; 1..127 count conflicts
                print(result.stderr.decode(), file=sys.stderr)
                return 1
            if result.returncode > 0:
                print(f"{new_path}: {result.returncode} conflict(s) to resolve")
        new.parent.mkdir(parents=True, exist_ok=True)
        new.write_bytes(merged.read_bytes())
    Path(old_path).unlink(missing_ok=True)
    print(f"moved {old_path} -> {new_path}, keeping the edits made to it")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
