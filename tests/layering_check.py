#!/usr/bin/env python3
"""Fails when a source file includes a header of an area its library does not link.

The libraries and what they link come from the build (ssegw_areas.txt, written by the top-level
CMakeLists.txt). Static libraries only catch a wrong-way *call* at link time, and only when it
reaches a symbol; a wrong-way #include of an inline or template piece compiles silently, and
Asio/Beast headers compile in any area (against the wrong definitions without ssegw_asio). This
check closes both gaps: usage `layering_check.py <source root> <ssegw_areas.txt>`.
"""
import pathlib
import re
import sys

INCLUDE = re.compile(r'^\s*#\s*include\s*[<"](ssegw/([a-z_]+)/|boost/(asio|beast)\b)', re.M)


def main(root: pathlib.Path, areas_file: pathlib.Path) -> int:
    direct = {}
    for line in areas_file.read_text().splitlines():
        if not line.strip():
            continue
        name, _, deps = line.partition(":")
        direct[name] = [d[len("ssegw_"):] for d in deps.split(";") if d.startswith("ssegw_")]

    def reach(area, seen=None):
        seen = set() if seen is None else seen
        for d in direct.get(area, []):
            if d not in seen:
                seen.add(d)
                reach(d, seen)
        return seen

    errors = []
    for area in direct:
        allowed = reach(area) | {area}
        files = list((root / "src" / area).glob("*.cpp")) + list(
            (root / "include" / "ssegw" / area).glob("*.hpp"))
        for f in files:
            for m in INCLUDE.finditer(f.read_text()):
                used = m.group(2) or "asio"
                if used not in allowed:
                    errors.append(f"{f.relative_to(root)}: includes {m.group(1)}... but "
                                  f"ssegw_{area} does not link ssegw_{used}")
    for e in errors:
        print(e)
    print(f"layering: {len(direct)} areas, {len(errors)} wrong-way include(s)")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])))
