"""A cited chunk as the chat app shows it: its text, and its place in the tree.

Document text is untrusted data: it is always escaped, and only a safe subset of its
Markdown (headings, list items, fenced code, `code` spans) is rendered on the escaped
text. Also the small text helpers the app uses for chunk labels (:func:`plain_line`,
:func:`shorten_words`).
"""

from __future__ import annotations

import html
import re
from typing import Any

from branchwise.ui.trace_view import expanded_in, path_relevance


def escape_untrusted(text: str) -> str:
    """Document text made inert for a Markdown/HTML view (documents are data, never markup).

    Blank lines separate paragraphs; single line breaks inside a paragraph become spaces,
    so hard-wrapped source text reflows to the width of the view.
    """
    paragraphs = [" ".join(p.split()) for p in re.split(r"\n\s*\n", text) if p.strip()]
    return "<br><br>".join(html.escape(p) for p in paragraphs)


_HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
_LIST_ITEM = re.compile(r"^\s*(?:[-*+]|\d{1,3}[.)])\s+")
_FENCE = re.compile(r"^\s*(```|~~~)")
_CODE_SPAN = re.compile(r"`([^`\n]+)`")


def _inline_html(text: str) -> str:
    """One line of untrusted text as inert HTML; `code` spans become <code> (escaped inside)."""
    out, pos = [], 0
    for m in _CODE_SPAN.finditer(text):
        out += [html.escape(text[pos:m.start()]), f"<code>{html.escape(m.group(1))}</code>"]
        pos = m.end()
    out.append(html.escape(text[pos:]))
    return "".join(out)


def document_html(text: str, *, drop_heading: str | None = None) -> str:
    """A document chunk as inert HTML that reads like the rendered Markdown it came from.

    Only a safe subset is interpreted, always on escaped text: ``#`` headings become bold
    lines (``drop_heading``: a first heading equal to it is left out, the view shows it as the
    title already), list items keep their own lines, fenced code stays pre-formatted, and
    `code` spans are set in code. Everything else is plain paragraphs (line breaks inside a
    paragraph reflow); no link, image or HTML in the document is ever rendered.
    """
    blocks: list[str] = []
    para: list[str] = []
    code: list[str] | None = None

    def flush() -> None:
        if para:
            lines, joined = [ln.strip() for ln in para], ""
            for k, line in enumerate(lines):
                sep = "" if k == 0 else ("<br>" if _LIST_ITEM.match(line) else " ")
                joined += sep + _inline_html(line)
            blocks.append(f"<p>{joined}</p>")
            para.clear()

    for raw_line in text.splitlines():
        if code is not None:
            if _FENCE.match(raw_line):
                blocks.append("<pre><code>" + html.escape("\n".join(code)) + "</code></pre>")
                code = None
            else:
                code.append(raw_line)
            continue
        if _FENCE.match(raw_line):
            flush()
            code = []
        elif not raw_line.strip():
            flush()
        elif (m := _HEADING.match(raw_line)) is not None:
            flush()
            title = m.group(2).strip()
            if not (not blocks and drop_heading is not None and title.casefold() == drop_heading.strip().casefold()):
                blocks.append(f"<p><strong>{_inline_html(title)}</strong></p>")
        else:
            para.append(raw_line)
    if code is not None:  # an unclosed fence: show what there is
        blocks.append("<pre><code>" + html.escape("\n".join(code)) + "</code></pre>")
    flush()
    return "".join(blocks)


def plain_line(text: str) -> str:
    """Markdown reduced to one plain line: no ``#`` heading marks, list bullets or backticks."""
    lines = []
    for line in text.splitlines():
        m = _HEADING.match(line)
        line = m.group(2) if m else _LIST_ITEM.sub("", line)
        lines.append(line.replace("`", "").strip())
    return " ".join(" ".join(lines).split())


def shorten_words(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters at a word boundary, ending in "…" when cut.

    A cut that can end at a sentence end in the last third of the limit does so (no ellipsis).
    """
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    head = text[: limit + 1]
    end = max(head.rfind(". "), head.rfind("! "), head.rfind("? "))
    if end >= limit * 2 // 3:
        return head[: end + 1]
    cut = text[: limit - 1]  # room for the ellipsis
    if text[limit - 1] != " " and (space := cut.rfind(" ")) > limit // 2:
        cut = cut[:space]  # drop the partial word
    return cut.rstrip(" ,;:-–—") + "…"


def summary_parts(summary: str, *, max_topics: int = 8, max_chars: int = 170) -> tuple[list[str], str]:
    """A node summary split for display: (topics, gist).

    Extractive summaries start with a ``Topics: a, b, c`` line followed by representative
    sentences; the topics come back as a list (at most ``max_topics``, then "…"), the rest as
    one plain line cut at a word boundary. LLM summaries have no topics line.
    """
    head, _, body = summary.partition("\n")
    topics: list[str] = []
    if head.startswith("Topics:"):
        topics = [t.strip() for t in head.removeprefix("Topics:").split(",") if t.strip()]
        if len(topics) > max_topics:
            topics = [*topics[:max_topics], "…"]
    else:
        body = summary
    return topics, shorten_words(plain_line(body), max_chars)


def chunk_markdown(index: Any, chunk_id: str, trace: Any = None) -> str:
    """A cited chunk: its text, and its place in the tree (root → leaf, summaries, path scores)."""
    chunk = index.chunks.get(chunk_id)
    title = chunk.title or chunk.doc_id
    lines = [f"### {escape_untrusted(plain_line(title))}",
             f"`{chunk_id}` · {chunk.n_tokens} tokens", "",
             f"<blockquote>{document_html(chunk.text, drop_heading=plain_line(title))}</blockquote>", ""]
    tree = index.tree
    leaf = tree.leaf_for_chunk(chunk_id) if tree is not None else None
    if leaf is None:
        lines.append("_This chunk has no leaf in the tree (it was found by search, not navigation)._")
        return "\n".join(lines)
    scores = path_relevance(trace)
    expanded = set(expanded_in(trace))
    lines += ["**Place in the tree**, from the root down to this chunk. "
              "p = path relevance for this question (0–1, the root is 1); ★ = the navigator expanded the node.", ""]
    path = list(reversed(tree.path_to_root(leaf.id)))
    items: list[str] = []
    for depth, nid in enumerate(path):
        node = tree[nid]
        p = 1.0 if nid == tree.root else scores.get(nid)
        facts = ["root"] if nid == tree.root else []
        facts.append(f"p = {p:.2f}" if p is not None else "p = — (not scored)")
        if nid in expanded:
            facts.append("★ expanded")
        head = f"<b>{html.escape(nid)}</b> · " + " · ".join(facts)
        if node.is_leaf:
            body = f"<br><b>this chunk</b> (<code>{html.escape(chunk_id)}</code>)"
        else:
            topics, gist = summary_parts(node.summary or "")
            body = (f"<br><small><i>topics:</i> {html.escape(', '.join(topics))}</small>" if topics else "")
            body += f"<br>{html.escape(gist)}" if gist else ("" if topics else "<br><i>(no summary)</i>")
        items.append(f"<li>{head}{body}" + ("<ul>" if depth < len(path) - 1 else ""))
    lines.append('<div class="tree-path"><ul>' + "".join(items) + "</li></ul>" * len(path) + "</div>")
    return "\n".join(lines)
