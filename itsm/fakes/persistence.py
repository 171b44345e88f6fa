"""The fakes' objects in a JSON file, so that a restart of ``make run`` keeps them.

Without it the fakes started empty while the portal's database kept its tickets: the next Jira
issue got ``OPS-1`` again, the key of an older ticket, and every stored link led nowhere. The file
holds what each platform exports (objects and the counters that number them), is loaded at start,
and is rewritten a moment after each change (a burst of creates costs one write) and at stop.
Each write goes to a temporary file that then replaces the old one, so a crash leaves either the
old or the new state, never half of one.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Protocol

STATE_FORMAT = 1
WRITE_DELAY_SECONDS = 0.2


class SavedState(Protocol):
    """What the file needs from ``server.FakeState`` (named here so that no import goes back)."""

    lock: Any

    def export(self) -> dict[str, Any]: ...

    def load(self, saved: dict[str, Any]) -> None: ...

    def reset(self) -> None: ...


class StateFile:
    """Loads ``state`` from ``path`` and keeps the file current while :meth:`start`-ed."""

    def __init__(
        self, path: Path | str, state: SavedState, write_delay: float = WRITE_DELAY_SECONDS
    ) -> None:
        self.path = Path(path)
        self.state = state
        self.write_delay = write_delay
        self._changed = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def load(self) -> bool:
        """Restore the saved state; False when there is none. An unreadable file is set aside."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            if not isinstance(data, dict) or data.get("format") != STATE_FORMAT:
                raise ValueError(f"not a format {STATE_FORMAT} state file")
            self.state.load(data["platforms"])
        except FileNotFoundError:
            return False
        except (ValueError, KeyError, TypeError) as error:
            # Keep the file for a human to look at rather than overwrite it with an empty state.
            aside = self.path.with_name(f"{self.path.name}.unreadable-{int(time.time())}")
            os.replace(self.path, aside)
            self.state.reset()
            print(f"fakes: {self.path} unreadable ({error}); moved to {aside}", file=sys.stderr)
            return False
        return True

    def save(self) -> None:
        with self.state.lock:
            text = json.dumps(
                {"format": STATE_FORMAT, "platforms": self.state.export()},
                ensure_ascii=False,
                separators=(",", ":"),
            )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(
            "w", encoding="utf-8", dir=self.path.parent, prefix=".state-", delete=False
        ) as tmp:
            tmp.write(text)
            tmp.flush()
            os.fsync(tmp.fileno())
        os.replace(tmp.name, self.path)

    def mark_changed(self) -> None:
        self._changed.set()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._write_changes, name="fakes-state", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the writer and save one last time (a change in the last moment included)."""
        self._stopping.set()
        self._changed.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        self.save()

    def _write_changes(self) -> None:
        # ``stop`` sets both events and saves last; checking ``_stopping`` after each clear means a
        # stop that lands during a write is never waited for in vain.
        while not self._stopping.is_set():
            self._changed.wait()
            if self._stopping.is_set():
                return
            # Gather the burst this change belongs to, then write once.
            self._stopping.wait(self.write_delay)
            self._changed.clear()
            try:
                self.save()
            except OSError as error:  # a full disk must not kill the fakes; the next change retries
                print(f"fakes: could not write {self.path}: {error}", file=sys.stderr)
