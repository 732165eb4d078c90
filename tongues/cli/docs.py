"""Write the flag tables of docs/cli.md and the command list of README.md from the ``tongues`` parser.

The docs hold generated blocks between ``<!-- generated: NAME -->`` and ``<!-- end generated -->``;
everything else is hand-written. Run after changing a flag (the test suite checks the docs are
current)::

    $ python -m tongues.cli.docs            # rewrite README.md and docs/cli.md in place
    $ python -m tongues.cli.docs --check    # exit 1 if they are stale
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

BLOCK = re.compile(r"(<!-- generated: (?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- end generated -->)", re.S)


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _help_of(parser: argparse.ArgumentParser, name: str) -> str:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for choice in action._choices_actions:
                if choice.dest == name:
                    return choice.help or ""
    return ""


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _usage_of(action: argparse.Action) -> str:
    if not action.option_strings:
        name = action.metavar or action.dest
        return f"`{name.upper() if action.metavar is None else name}`"
    flag = ", ".join(action.option_strings)
    if action.nargs == 0:
        return f"`{flag}`"
    if action.choices is not None and action.metavar is None:
        value = "{" + ",".join(str(c) for c in action.choices) + "}"
    else:
        value = action.metavar or action.dest.upper()
    if action.nargs == "+":
        value = f"{value} [{value} ...]"
    return f"`{flag} {value}`"


def flag_table(parser: argparse.ArgumentParser) -> str:
    """A markdown table of ``parser``'s arguments: usage, help (with ``%(default)s`` expanded)."""
    rows = ["| argument | meaning |", "|---|---|"]
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        help_text = (action.help or "") % {"default": action.default, "prog": parser.prog}
        if action.required:
            help_text += " (required)"
        rows.append(f"| {_usage_of(action)} | {_cell(help_text)} |")
    return "\n".join(rows) + "\n"


def command_list(parser: argparse.ArgumentParser) -> str:
    """The README's list: one ``tongues COMMAND --help`` line per command, with its one-line help."""
    lines = ["```"]
    commands = _subparsers(parser)
    width = max(len(f"tongues {name} --help") for name in commands)
    lines.append(f"{'tongues --version':<{width}}  # the installed version")
    for name in commands:
        lines.append(f"{f'tongues {name} --help':<{width}}  # {_help_of(parser, name)}")
    lines.append("```")
    return "\n".join(lines) + "\n"


def generated_blocks() -> dict[str, str]:
    """Every block the docs may hold, by name: ``commands`` and ``flags-<command>``."""
    from . import build_parser

    parser = build_parser()
    blocks = {"commands": command_list(parser)}
    for name, sub in _subparsers(parser).items():
        blocks[f"flags-{name}"] = flag_table(sub)
    return blocks


def render(text: str, blocks: dict[str, str], where: str) -> str:
    """``text`` with each generated block replaced by its current contents."""
    def replace(match: re.Match) -> str:
        name = match.group("name")
        if name not in blocks:
            raise KeyError(f"{where}: generated block {name!r} names no command (known: {', '.join(blocks)})")
        return match.group(1) + blocks[name] + match.group(4)

    return BLOCK.sub(replace, text)


def documents(root: Path) -> list[Path]:
    return [root / "README.md", root / "docs" / "cli.md"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tongues.cli.docs", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report stale docs (exit 1)")
    parser.add_argument("--root", default=str(Path(__file__).resolve().parents[2]), help="repository root")
    args = parser.parse_args(argv)
    blocks, stale = generated_blocks(), []
    for path in documents(Path(args.root)):
        text = path.read_text(encoding="utf-8")
        new = render(text, blocks, str(path))
        if new != text:
            stale.append(str(path))
            if not args.check:
                path.write_text(new, encoding="utf-8")
    if stale:
        print(("stale: " if args.check else "rewrote: ") + ", ".join(stale), file=sys.stderr)
    return 1 if stale and args.check else 0


if __name__ == "__main__":
    sys.exit(main())
