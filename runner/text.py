def counted(count: int, singular: str, plural: str = "") -> str:
    """`count` with its noun in the right number: "1 run", "2 runs", "2 repositories"."""
    return f"{count} {singular if count == 1 else plural or singular + 's'}"
