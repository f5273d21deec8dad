#!/usr/bin/env python3
"""Draws a window of a `--trace` file (Chrome trace JSON) as an SVG timeline,
one row per track, the way Perfetto shows it: the README's picture, made
here because no browser runs on the machines that build this project.

usage: docs/trace_picture.py TRACE.json OUT.svg [FROM_US TO_US]
"""
import json
import sys
from html import escape

WIDTH, ROW, LEFT = 1000, 34, 90
COLOURS = {"idle": "#ddd", "poll main": "#4c72b0", "send to host": "#c44e52"}


def intervals(events):
    """(track, name, start, end) for B/E pairs, b/e pairs (by id) and X events."""
    open_, out = {}, []
    for e in events:
        ph, tid = e["ph"], e.get("tid")
        if ph in ("B", "b"):
            open_[(tid, e.get("id"), e["name"] if ph == "B" else None)] = e
        elif ph in ("E", "e"):
            key = (tid, e.get("id"), e["name"] if ph == "E" else None)
            start = open_.pop(key, None)
            if start:
                out.append((tid, start["name"], start["ts"], e["ts"]))
        elif ph == "X":
            out.append((tid, e["name"], e["ts"], e["ts"] + e["dur"]))
    return out


def main():
    events = json.load(open(sys.argv[1]))["traceEvents"]
    tracks = {e["tid"]: e["args"]["name"] for e in events if e["ph"] == "M"}
    timed = [e for e in events if "ts" in e]
    lo, hi = (float(sys.argv[3]), float(sys.argv[4])) if len(sys.argv) > 4 else (timed[0]["ts"], timed[-1]["ts"])
    x = lambda t: LEFT + (min(max(t, lo), hi) - lo) / (hi - lo) * (WIDTH - LEFT - 10)
    rows = {tid: i for i, tid in enumerate(sorted(tracks))}
    svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{ROW * len(rows) + 30}" '
           'font-family="sans-serif" font-size="10">', '<rect width="100%" height="100%" fill="white"/>']
    for tid, row in rows.items():
        svg.append(f'<text x="4" y="{row * ROW + 20}">{escape(tracks[tid])}</text>')
    for tid, name, start, end in intervals(timed):
        if end < lo or start > hi or tid not in rows:
            continue
        colour = COLOURS.get(name, "#55a868" if tid != 2 else "#8172b2")
        y, w = rows[tid] * ROW + 6, max(x(end) - x(start), 1)
        svg.append(f'<rect x="{x(start):.1f}" y="{y}" width="{w:.1f}" height="{ROW - 12}" fill="{colour}">'
                   f'<title>{escape(name)}</title></rect>')
        if w > 6 * len(name):
            svg.append(f'<text x="{x(start) + 2:.1f}" y="{y + 14}" fill="white">{escape(name)}</text>')
    for e in timed:
        if e["ph"] == "i" and lo <= e["ts"] <= hi and e["tid"] in rows:
            y = rows[e["tid"]] * ROW
            svg.append(f'<line x1="{x(e["ts"]):.1f}" x2="{x(e["ts"]):.1f}" y1="{y + 4}" y2="{y + ROW - 4}" '
                       f'stroke="black"><title>{escape(e["name"])}</title></line>')
    svg.append(f'<text x="{LEFT}" y="{ROW * len(rows) + 20}">{hi - lo:.0f} µs from {lo / 1000:.3f} ms after boot; '
               'hover for names</text></svg>')
    open(sys.argv[2], "w").write("\n".join(svg))


main()
