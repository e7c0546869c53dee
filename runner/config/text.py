def storable(text: str) -> str:
    """`text` with NUL replaced: PostgreSQL stores no NUL in text or JSON, and what is
    stored (output, payloads, refusals) holds whatever its sender put in it."""
    return text.replace("\x00", "\ufffd")


def counted(count: int, singular: str, plural: str = "") -> str:
    """`count` with its noun in the right number: "1 run", "2 runs", "2 repositories"."""
    return f"{count} {singular if count == 1 else plural or singular + 's'}"


def duration_words(seconds: float) -> str:
    """A duration as people read it: "4.2s", "3m 07s", "1h 05m"."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, seconds = divmod(round(seconds), 60)
    return f"{minutes}m {seconds:02d}s" if minutes < 60 else f"{minutes // 60}h {minutes % 60:02d}m"
