"""The README's "Large images and paper-comparable numbers" commands parse with the real command lines."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def section_commands() -> list[list[str]]:
    text = README.read_text().split("## Large images and paper-comparable numbers", 1)[1].split("\n## ", 1)[0]
    lines = "\n".join(re.findall(r"```bash\n(.*?)```", text, re.S)).replace("\\\n", " ")
    return [shlex.split(line.split("#")[0]) for line in lines.splitlines() if line.split("#")[0].strip()]


def test_every_large_image_command_of_the_readme_parses_with_the_real_command_lines():
    from admd_deploy.cli import build_parser
    from admd_edge.cli import build_parser as edge_parser

    commands = section_commands()
    assert {tuple(c[:2]) for c in commands} == {("admd-edge", "predict"), ("admd-deploy", "evaluate"),
                                                ("admd-deploy", "data")}
    for argv in commands:
        parser = build_parser() if argv[0] == "admd-deploy" else edge_parser()
        ns = parser.parse_args(argv[1:])  # exits 2 (SystemExit) on a flag the CLI does not have
        assert ns.command == argv[1]
