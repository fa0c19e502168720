"""mkdocs hook: fills the CLI reference page with the ``--help`` of every ``lossatlas`` command.

The text is generated at build time from the click command that ``lossatlas`` itself runs
(:func:`lossatlas.cli._app.build_app`), so the reference cannot drift from the code. A page
opts in by containing the marker line ``<!-- lossatlas-cli-reference -->``.
"""

from __future__ import annotations

MARKER = "<!-- lossatlas-cli-reference -->"
WIDTH = 80  # the width of a terminal; also fits the page without scrolling


def _sections(cmd, name: str, parent, level: int) -> list[str]:
    ctx = cmd.context_class(cmd, info_name=name, parent=parent, terminal_width=WIDTH,
                            max_content_width=WIDTH)
    path = ctx.command_path
    out = [f"{'#' * level} `{path}`", "", "```text", cmd.get_help(ctx).rstrip(), "```", ""]
    if hasattr(cmd, "list_commands"):  # a group: document its subcommands in the order of --help
        for sub in cmd.list_commands(ctx):
            child = cmd.get_command(ctx, sub)
            if child is not None and not getattr(child, "hidden", False):
                out += _sections(child, sub, ctx, min(level + 1, 4))
    return out


def render() -> str:
    """Markdown for the whole command tree, one section per command."""
    from lossatlas.cli._app import build_app

    return "\n".join(_sections(build_app(), "lossatlas", None, 2))


def on_page_markdown(markdown, page, config, files):  # noqa: ARG001 - mkdocs hook signature
    if MARKER not in markdown:
        return markdown
    return markdown.replace(MARKER, render())


if __name__ == "__main__":  # preview: python docs/gen_cli.py
    print(render())
