"""Print the README's configuration table from remotegrad.server.config.SETTINGS."""

from remotegrad.server.config import SETTINGS


def table() -> str:
    rows = ["| flag | environment variable | default | used by | meaning |",
            "|---|---|---|---|---|"]
    for s in SETTINGS:
        rows.append(f"| `{s.flag}` | `{s.env}` | `{s.default!r}` | {', '.join(s.commands)} "
                    f"| {s.help} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(table())
