"""The "New request" page's form: pick a catalog item, then fill in its declared inputs (one field
each), or, for an item that declares none, a JSON object. ``services.catalog.submit`` checks it
again (the API's rule), so the page and the API accept the same requests."""

from __future__ import annotations

import json
from typing import Any

from django import forms

from escalation.models import CatalogBundle
from escalation.services import catalog
from portal.text import MAX_JSON_DEPTH, check_text

MAX_INPUT_CHARS = 2000


class CatalogRequestForm(forms.Form):
    item = forms.ChoiceField(label="Catalog item")
    request_data = forms.CharField(
        label="Request data (a JSON object)",
        required=False,
        widget=forms.Textarea(attrs={"rows": 6, "spellcheck": "false"}),
        initial="{}",
    )

    def __init__(self, *args: Any, items: list[CatalogBundle], selected: CatalogBundle | None,
                 **kwargs: Any) -> None:  # fmt: skip
        super().__init__(*args, **kwargs)
        self.items = items
        self.selected = selected
        self.fields["item"].choices = [
            (item.name, f"{item.title or item.name} ({item.version})") for item in items
        ]
        if selected is not None:
            self.fields["item"].initial = selected.name
        self.inputs = catalog.declared_inputs(selected) if selected is not None else []
        for spec in self.inputs:
            self.fields[f"input_{spec['name']}"] = forms.CharField(
                label=spec["label"],
                required=spec["required"],
                max_length=MAX_INPUT_CHARS,
                help_text=spec["help"],
            )
        if self.inputs:
            del self.fields["request_data"]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        for name, value in list(cleaned.items()):
            if isinstance(value, str) and (problem := check_text(value)):
                self.add_error(name, f"This text {problem}.")
        return cleaned

    def data_of_request(self) -> Any:
        """The request data the fields make (raises ValidationError on a JSON that is not one)."""
        if self.inputs:
            return {
                spec["name"]: self.cleaned_data[f"input_{spec['name']}"]
                for spec in self.inputs
                if self.cleaned_data.get(f"input_{spec['name']}") not in (None, "")
            }
        raw = (self.cleaned_data.get("request_data") or "").strip() or "{}"
        try:
            return json.loads(raw)
        except RecursionError as exc:
            raise forms.ValidationError(
                {"request_data": f"Not JSON: nested deeper than {MAX_JSON_DEPTH} levels"}
            ) from exc
        except ValueError as exc:
            raise forms.ValidationError({"request_data": f"Not JSON: {exc}"}) from exc
