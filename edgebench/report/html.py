"""One self-contained ``report.html``: styles inline, images embedded as data URIs, no script, no network, so
it opens offline and can be mailed as one file."""

from __future__ import annotations

import base64
import html as _html
import re
from typing import Any

from edgebench.naming import slug
from edgebench.report.tables import Bullets, Cell, Code, Mark, Num, Para, PlotRef, Prop, Section, Table, cell_text

#: tables longer than this are folded (still in the page, one click away)
FOLD_ROWS = 40

CSS = """
:root { --fg: #1b1b1b; --muted: #6b6b6b; --line: #d9d9d9; --bad: #b2182b; --band: #f6f6f6; --accent: #0072b2; }
* { box-sizing: border-box; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", sans-serif; color: var(--fg);
       margin: 0 auto; max-width: 1280px; padding: 1.5rem 2rem 4rem; }
h1 { font-size: 1.7rem; margin: 0 0 .3rem; } h2 { font-size: 1.3rem; margin-top: 2.2rem;
     border-bottom: 2px solid var(--line); padding-bottom: .2rem; } h3 { font-size: 1.1rem; margin-top: 1.6rem; }
p.lead { color: var(--muted); margin-top: 0; }
nav { font-size: .9rem; margin: .8rem 0 1.2rem; } nav a { margin-right: .9rem; color: var(--accent);
     text-decoration: none; white-space: nowrap; }
.scroll { overflow-x: auto; margin: .4rem 0 1rem; }
table { border-collapse: collapse; font-size: .85rem; font-variant-numeric: tabular-nums; }
caption { text-align: left; font-weight: 600; padding: .3rem 0; }
th, td { border-bottom: 1px solid var(--line); padding: .25rem .55rem; text-align: left; vertical-align: top; }
th { background: #fafafa; position: sticky; top: 0; } tbody tr:nth-child(even) { background: var(--band); }
td.num { text-align: right; white-space: nowrap; } td .ci { color: var(--muted); font-size: .8em; }
.bad { color: var(--bad); font-weight: 600; } .muted { color: var(--muted); } .missing { color: var(--muted);
       font-style: italic; } del { color: var(--bad); }
figure { margin: 1rem 0 1.6rem; } figure img { max-width: 100%; height: auto; border: 1px solid var(--line); }
figcaption { color: var(--muted); font-size: .88rem; max-width: 60rem; }
pre { background: var(--band); padding: .8rem; overflow: auto; font-size: .8rem; max-height: 32rem; }
code { background: var(--band); padding: 0 .2rem; border-radius: 3px; }
details > summary { cursor: pointer; color: var(--accent); margin: .4rem 0; }
.banner { border-left: 4px solid var(--bad); background: #fdf1f2; padding: .5rem .8rem; }
"""


def inline(text: str) -> str:
    """The Markdown subset of the report's prose (`code`, **bold**, ~~struck~~, *italic*) as escaped HTML."""
    out = _html.escape(text, quote=False)
    out = re.sub(r"`([^`]+)`", r"<code>\1</code>", out)
    out = re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", out)
    out = re.sub(r"~~([^~]+)~~", r"<del>\1</del>", out)
    return re.sub(r"(?<![\w*])\*([^*\s][^*]*)\*(?![\w*])", r"<em>\1</em>", out)


def _td(c: Cell) -> str:
    if isinstance(c, Prop):
        if c.value is None:
            return '<td class="num">–</td>'
        ci = "" if c.lo is None or c.hi is None else f' <span class="ci">[{c.lo:.3f}, {c.hi:.3f}]</span>'
        n = "" if c.n is None else f' title="n = {c.n}"'
        return f'<td class="num"{n}>{c.value:.3f}{ci}</td>'
    if isinstance(c, Num) or (isinstance(c, int | float) and not isinstance(c, bool)):
        return f'<td class="num">{_html.escape(cell_text(c))}</td>'
    if isinstance(c, Mark):
        if c.kind == "struck":
            return f"<td><del>{_html.escape(c.text)}</del></td>"
        cls = {"bad": "bad", "muted": "muted", "missing": "missing"}.get(c.kind)
        return f'<td class="{cls}">{inline(c.text)}</td>' if cls else f"<td>{inline(c.text)}</td>"
    return f"<td>{inline(cell_text(c))}</td>"


def table_html(t: Table, anchor: str) -> str:
    head = "".join(f"<th>{_html.escape(c)}</th>" for c in t.columns)
    body = "\n".join("<tr>" + "".join(_td(c) for c in r) + "</tr>" for r in t.rows)
    cap = f"<caption>{inline(t.title)}</caption>"
    table = (f'<div class="scroll"><table id="{anchor}">{cap}<thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n'
             f"</tbody></table></div>")
    if t.caption:
        table += f"<p>{inline(t.caption)}</p>"
    if len(t.rows) > FOLD_ROWS:
        return f"<details><summary>{inline(t.title)} ({len(t.rows)} rows)</summary>{table}</details>"
    return table


def html(title: str, lead: str, sections: list[Section], plots: dict[str, Any]) -> str:
    """One self-contained page of ``sections`` under ``title`` and a ``lead`` line, plots embedded."""
    nav = " ".join(f'<a href="#{s.id}">{_html.escape(s.title)}</a>' for s in sections if s.level == 2)
    parts = ["<!doctype html>", '<html lang="en"><head><meta charset="utf-8">',
             '<meta name="viewport" content="width=device-width, initial-scale=1">',
             f"<title>{_html.escape(title)}</title>", f"<style>{CSS}</style></head><body>",
             f"<h1>{_html.escape(title)}</h1>", f'<p class="lead">{inline(lead)}</p>',
             f"<nav>{nav}</nav>"]
    used: dict[str, int] = {}
    for s in sections:
        parts.append(f'<section id="{s.id}"><h{s.level}>{_html.escape(s.title)}</h{s.level}>')
        for b in s.blocks:
            if isinstance(b, Para):
                cls = ' class="banner"' if b.text.startswith("**This run is incomplete") else ""
                parts.append(f"<p{cls}>{inline(b.text)}</p>")
            elif isinstance(b, Bullets):
                parts.append("<ul>" + "".join(f"<li>{inline(i)}</li>" for i in b.items) + "</ul>")
            elif isinstance(b, Table):
                a = slug(b.name, sep="-", keep="", lower=True, default="t")
                used[a] = used.get(a, 0) + 1
                parts.append(table_html(b, a if used[a] == 1 else f"{a}-{used[a]}"))
            elif isinstance(b, Code):
                pre = f"<pre><code>{_html.escape(b.text)}</code></pre>"
                parts.append(f"<details><summary>{_html.escape(b.summary)}</summary>{pre}</details>"
                             if b.summary else pre)
            elif isinstance(b, PlotRef) and b.name in plots:
                p = plots[b.name]
                data = base64.b64encode(p.png).decode("ascii")
                parts.append(f'<figure id="plot-{p.name}"><img alt="{_html.escape(p.title)}" '
                             f'src="data:image/png;base64,{data}"><figcaption><strong>{_html.escape(p.title)}.'
                             f"</strong> {inline(p.caption)}</figcaption></figure>")
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts)
