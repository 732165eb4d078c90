"""Re-create the plain texts in this folder from the UDHR-in-XML files (see PROVENANCE.md).

Usage: python tests/data/udhr/extract.py ../shared/data/udhr/xml
Plain text = every title/para/listitem text in document order, one per line.
"""
import pathlib
import sys
import xml.etree.ElementTree as ET

NS = "{http://efele.net/udhr}"


def main(src: str) -> None:
    out = pathlib.Path(__file__).parent
    for path in sorted(pathlib.Path(src).glob("udhr_*.xml")):
        root = ET.parse(path).getroot()
        lines = []
        for el in root.iter():
            if el.tag in (NS + "title", NS + "para", NS + "listitem") and el.text and el.text.strip():
                lines.append(" ".join(el.text.split()))
        key = path.stem[len("udhr_"):]
        (out / f"{key}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main(sys.argv[1])
