"""The default model's corpus: Debian's translated manual pages and fortune cookies, plus the UDHR.

Used by scripts/train_default_model.py. ``build_corpus(cache)`` downloads the Debian packages with
``apt-get download`` into ``cache/debs`` (once), unpacks them with ``dpkg-deb -x`` and returns, per
language, a list of documents (one per manual page, 25 fortunes, or 8 lines of the UDHR) with the
source each came from. Manual pages are turned into plain text by :func:`roff_to_text`, a small
stripper of man(7) macros and escapes (no groff needed, so the text is the same on every machine).
"""

from __future__ import annotations

import gzip
import hashlib
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
UDHR = ROOT / "tests" / "data" / "udhr"

# language -> (manual-page package, its folder under usr/share/man), fortune packages and their folders
# under usr/share/games/fortunes (None: the top level), UDHR file. Licences: docs/default-model.md.
LANGUAGES = {
    "eng": {"man": None, "fortunes": [("fortunes", None)], "udhr": "eng"},
    "fra": {"man": ("manpages-fr", "fr"), "fortunes": [], "udhr": "fra"},
    "deu": {"man": ("manpages-de", "de"), "fortunes": [("fortunes-de", "de")], "udhr": "deu_1996"},
    "spa": {"man": ("manpages-es", "es"), "fortunes": [("fortunes-es", "es")], "udhr": "spa"},
    "ita": {"man": ("manpages-it", "it"), "fortunes": [("fortunes-it", "it")], "udhr": "ita"},
    "por": {"man": ("manpages-pt-br", "pt_BR"), "fortunes": [("fortunes-br", None)], "udhr": "por_BR"},
    "nld": {"man": ("manpages-nl", "nl"), "fortunes": [], "udhr": "nld"},
    "pol": {"man": ("manpages-pl", "pl"), "fortunes": [("fortunes-pl", "pl")], "udhr": "pol"},
    "ces": {"man": ("manpages-cs", "cs"), "fortunes": [("fortunes-cs", "cs")], "udhr": "ces"},
    "rus": {"man": ("manpages-ru", "ru"), "fortunes": [("fortunes-ru", "ru")], "udhr": "rus"},
}
# English fortune files left out: pictures made of characters, and text in other languages.
SKIP_FORTUNE_FILES = {"ascii-art", "art", "translate-me"}
FORTUNES_PER_DOCUMENT = 25
UDHR_LINES_PER_DOCUMENT = 8
MIN_DOCUMENT_CHARS = 200


def packages() -> list[str]:
    names = []
    for spec in LANGUAGES.values():
        if spec["man"]:
            names.append(spec["man"][0])
        names.extend(package for package, _ in spec["fortunes"])
    return sorted(set(names))


def fetch(cache: Path) -> Path:
    """Download (``apt-get download``) and unpack every package into ``cache``; return the unpacked root."""
    debs, unpacked = cache / "debs", cache / "unpacked"
    debs.mkdir(parents=True, exist_ok=True)
    missing = [name for name in packages() if not list(debs.glob(f"{name}_*.deb"))]
    if missing:
        print(f"apt-get download {' '.join(missing)}", flush=True)
        subprocess.run(["apt-get", "download", *missing], cwd=debs, check=True)
    for name in packages():
        target = unpacked / name
        if not target.is_dir():
            deb = sorted(debs.glob(f"{name}_*.deb"))[-1]
            target.mkdir(parents=True)
            subprocess.run(["dpkg-deb", "-x", str(deb), str(target)], check=True)
    return unpacked


# -- manual pages -----------------------------------------------------------------------------------
SPECIAL_CHARS = {
    "em": "—", "en": "–", "hy": "-", "aq": "'", "dq": '"', "lq": "“", "rq": "”", "oq": "‘", "cq": "’",
    "Fo": "«", "Fc": "»", "fo": "‹", "fc": "›", "bu": "•", "co": "©", "rg": "®", "tm": "™", "mu": "×",
    "di": "÷", ">=": "≥", "<=": "≤", "!=": "≠", "+-": "±", "->": "→", "<-": "←", "ha": "^", "ti": "~",
    "rs": "\\", "sl": "/", "ba": "|", "lB": "[", "rB": "]", "lC": "{", "rC": "}", "de": "°", "at": "@",
    "sh": "#", "Do": "$", "Eu": "€", "ss": "ß", "pl": "+", "mi": "-", "eq": "=", "ga": "`", "aa": "´",
    "Sd": "ð", "ae": "æ", "AE": "Æ", "ps": "¶", "sc": "§", "ct": "¢", "Po": "£", "Ye": "¥", "12": "½",
}
ESCAPE = re.compile(r"\\(?:f(?:\[[^\]]*\]|\([A-Za-z0-9]{2}|.)|\((..)|\[([^\]]*)\]|\*(?:\[[^\]]*\]|\(..|.)|"
                    r"s[+-]?\d+|n(?:\[[^\]]*\]|\(..|.)|[kwhvxlLoDbHNRSYZ]'[^']*'|(.))")
SIMPLE_ESCAPES = {"-": "-", "e": "\\", "\\": "\\", " ": " ", "~": " ", "0": " ", "&": "", "|": "", "^": "",
                  ",": "", "/": "", "c": "", "%": "", ":": "", "'": "'", "`": "`", ".": ".", "t": " ", "!": "",
                  "\"": ""}
FONT_MACROS = {"B", "I", "SM", "SB", "BR", "RB", "IR", "RI", "BI", "IB", "UR", "MT"}
# The synopsis section (command lines and C prototypes) under its names in the ten languages.
SYNOPSIS_HEADINGS = {"SYNOPSIS", "SYNOPSE", "ÜBERSICHT", "SINOPSIS", "SINOSSI", "SKŁADNIA", "СИНТАКСИС", "ОБЗОР",
                     "SYNTAXE", "POUŽITÍ", "SINOPSE", "OVERZICHT"}
BREAK_MACROS = {"PP", "P", "LP", "TP", "TQ", "IP", "HP", "sp", "br", "RS", "RE", "in", "ti", "ne", "bp", "UE", "ME"}


def _escape(match: re.Match) -> str:
    special, bracket, single = match.group(1), match.group(2), match.group(3)
    if special is not None:
        return SPECIAL_CHARS.get(special, "")
    if bracket is not None:
        if bracket.startswith("u") and re.fullmatch(r"u[0-9A-Fa-f]{4,6}", bracket):
            return chr(int(bracket[1:], 16))
        return SPECIAL_CHARS.get(bracket, "")
    if single is not None:
        return SIMPLE_ESCAPES.get(single, "")
    return ""


def clean_roff(text: str) -> str:
    """A roff text line without its escapes (fonts, sizes, strings) and with special characters spelled out."""
    return ESCAPE.sub(_escape, text)


def _macro_arguments(rest: str) -> list[str]:
    return [a[1:-1] if a.startswith('"') else a for a in re.findall(r'"[^"]*"|\S+', rest)]


def roff_to_text(source: str) -> str:
    """The prose of a man(7) page: headings and paragraphs, one per line. Examples (``.nf``/``.EX``),
    tables (``.TS``) and the synopsis are left out: they are code, not language."""
    paragraphs: list[str] = []
    current: list[str] = []
    skipping = None
    section = ""

    def flush() -> None:
        if current:
            paragraph = re.sub(r"\s+", " ", " ".join(current)).strip()
            if paragraph:
                paragraphs.append(paragraph)
            current.clear()

    for line in source.splitlines():
        if line.startswith(("'", ".")):
            match = re.match(r"[.']\s*([A-Za-z]{1,3})\b\s*(.*)", line)
            if not match:
                continue
            macro, rest = match.groups()
            if skipping:
                if macro == skipping:
                    skipping = None
                continue
            if macro in ("nf", "EX", "TS", "EQ", "de", "ig"):
                flush()
                skipping = {"nf": "fi", "EX": "EE", "TS": "TE", "EQ": "EN", "de": "", "ig": ""}[macro] or None
                continue
            if macro in ("SH", "SS"):
                flush()
                section = clean_roff(" ".join(_macro_arguments(rest))).strip()
                if section:
                    paragraphs.append(section)
                continue
            if section.upper() in SYNOPSIS_HEADINGS:
                continue
            if macro in FONT_MACROS:
                words = _macro_arguments(rest)
                joiner = " " if macro in ("B", "I", "SM", "SB") else ""
                current.append(clean_roff(joiner.join(words)))
            elif macro in BREAK_MACROS:
                flush()
                if macro == "IP" and rest:
                    tag = _macro_arguments(rest)
                    if tag and tag[0] not in ("\\(bu", "*", "-", "\\-"):
                        current.append(clean_roff(tag[0]))
            continue
        if skipping or section.upper() in SYNOPSIS_HEADINGS:
            continue
        if line.startswith('\\"'):
            continue
        current.append(clean_roff(line))
    flush()
    return "\n".join(paragraphs) + "\n"


def man_documents(root: Path, package: str, folder: str) -> list[str]:
    documents = []
    for page in sorted((root / package / "usr" / "share" / "man" / folder).rglob("*.gz")):
        if page.is_symlink():
            continue
        source = gzip.decompress(page.read_bytes()).decode("utf-8", errors="replace")
        if source.lstrip().startswith(".so "):
            continue
        text = roff_to_text(source)
        if len(text) >= MIN_DOCUMENT_CHARS:
            documents.append(text)
    return documents


# -- fortunes ---------------------------------------------------------------------------------------
def fortune_documents(root: Path, package: str, folder: str | None) -> list[str]:
    """Groups of FORTUNES_PER_DOCUMENT fortunes, each file once (symbolic links, ``.u8`` copies and
    duplicate fortunes dropped), from UTF-8 files only."""
    base = root / package / "usr" / "share" / "games" / "fortunes"
    base = base / folder if folder else base
    seen_files, seen_fortunes, documents = set(), set(), []
    for path in sorted(base.iterdir()):
        stem = path.name.removesuffix(".u8")
        if path.is_symlink() or not path.is_file() or path.suffix == ".dat" or stem in SKIP_FORTUNE_FILES:
            continue
        data = path.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        if not data or digest in seen_files:
            continue
        seen_files.add(digest)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            continue
        fortunes = []
        for fortune in re.split(r"^%\s*$", text, flags=re.MULTILINE):
            fortune = fortune.strip("\n")
            if fortune.strip() and fortune not in seen_fortunes:
                seen_fortunes.add(fortune)
                fortunes.append(fortune)
        for start in range(0, len(fortunes), FORTUNES_PER_DOCUMENT):
            documents.append("\n\n".join(fortunes[start:start + FORTUNES_PER_DOCUMENT]) + "\n")
    return documents


def udhr_documents(name: str) -> list[str]:
    lines = (UDHR / f"{name}.txt").read_text(encoding="utf-8").splitlines(keepends=True)
    return ["".join(lines[i:i + UDHR_LINES_PER_DOCUMENT]) for i in range(0, len(lines), UDHR_LINES_PER_DOCUMENT)]


def build_corpus(cache: Path) -> dict[str, dict[str, list[str]]]:
    """language -> source ("man", "fortunes", "udhr") -> documents."""
    root = fetch(cache)
    corpus = {}
    for language, spec in LANGUAGES.items():
        sources = {"man": man_documents(root, *spec["man"]) if spec["man"] else [],
                   "fortunes": [d for package, folder in spec["fortunes"]
                                for d in fortune_documents(root, package, folder)],
                   "udhr": udhr_documents(spec["udhr"])}
        corpus[language] = {source: docs for source, docs in sources.items() if docs}
    return corpus
