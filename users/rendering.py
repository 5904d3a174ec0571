"""The console's measured rendering kit: what lets a list of 50 rows or a board of 125 cards
render in a few milliseconds. Each piece says what it saves; the HTML stays in the templates.

- `url_for_each`: one `reverse()` for a page of links instead of one per row (~15 µs each).
- `TemplateRow`: answers the template engine's `row[name]` lookup without a raised TypeError.
- `Row`, `Card`: a list line and a board card worked out in Python, escaped once; a `{% url %}`,
  a `|date` or a model property per cell cost more than the query behind the page.
- `FlagBadges`: the flag badges of a page rendered once per combination of flags.
- `FastSelect`: a `<select>` written in Python; 249 country `<option>` includes were a large
  share of the list's and the board's render time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from html import escape
from typing import Any

from django import forms
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.safestring import mark_safe

from users.models import FeatureFlag

# A valid user id that no user has: reversed once, then replaced by each row's id.
_PLACEHOLDER_ID = "U" + "0" * 26


def url_for_each(name: str) -> Callable[[str], str]:
    """`reverse(name, args=[pk])` for many users at the cost of one reverse.

    The list and the board link every row (up to 125 cards); reverse() is ~15 µs a call and
    user ids are [0-9A-Z] only, so splicing them into one reversed URL is exact.
    """
    head, _, tail = reverse(name, args=[_PLACEHOLDER_ID]).partition(_PLACEHOLDER_ID)
    return lambda pk: f"{head}{pk}{tail}"


class TemplateRow:
    """Base of the rows and cards views compute for templates (slotted dataclasses).

    Django's template engine tries `row[name]` before `row.name`; answering the item lookup
    saves a raised TypeError on each of the thousands of lookups a page of rows makes.
    """

    __slots__ = ()

    def __getitem__(self, name: str) -> Any:
        return getattr(self, name)


class FlagBadges:
    """The flag badges of many rows, each combination of flags rendered once.

    A page of 50 users or a board of 125 cards holds a handful of combinations; rendering the
    `partial` (a template fragment taking `flags`, a list of FeatureFlag) per row cost more
    than the query that found the rows.
    """

    def __init__(self, partial: str) -> None:
        self.partial = partial
        self._rendered: dict[tuple[str, ...], str] = {}

    def __call__(self, flags: tuple[str, ...]) -> str:
        html = self._rendered.get(flags)
        if html is None:
            html = render_to_string(self.partial, {"flags": [FeatureFlag(f) for f in flags]})
            self._rendered[flags] = html
        return html


@dataclass(frozen=True, slots=True)
class Row(TemplateRow):
    """What one line of the list shows, worked out in Python: the template prints 50 of them,
    and a `{% url %}`, a `|date` or a model property per cell cost more than the query."""

    pk: str
    display_name: str
    detail_url: str
    email: str
    phone: str
    status: str
    status_label: str
    flags_html: str
    country: str
    created: str  # date, local time
    created_title: str  # date and time, local time
    deleted: bool
    selected: bool
    pending: bool = False  # a change waits for approval (four-eyes)
    assignee: str = ""  # who works the case, "" when nobody (issue 14.1)


@dataclass(frozen=True, slots=True)
class Card(TemplateRow):
    """What one card shows, worked out in Python.

    The board draws up to 125 cards: each `{% url %}`, filter or model property the template
    evaluated per card cost about as much as the query behind the whole column. The text
    fields are escaped here, once, and marked safe: the template prints most of them twice
    or more, and escaping was a third of its time.
    """

    pk: str
    display_name: str
    version: str  # text: an int would go through number localisation on every card
    detail_url: str
    move_url: str
    since: str  # time in this status, "3 d 4 h"
    since_title: str  # the moment it entered it, local time
    sla: str  # "", "at_risk" or "breached" (users/sla.py)
    flags_html: str  # the flag badges, rendered once per combination of flags
    pending: bool = False  # a change waits for approval (four-eyes)
    assignee: str = ""  # who works the case, escaped; "" when nobody (issue 14.1)
    assign_url: str = ""  # "Assign to me" on the card
    moved: bool = False  # moved a moment ago: shown first in its column, highlighted


class FastSelect(forms.Select):
    """A `Select` rendered in Python, to the same HTML as Django's templates.

    Django renders every `<option>` through a template include: for the 249 countries that was
    a large share of the time the list and the board took to render. Grouped choices fall back
    to Django's own rendering.
    """

    def render(self, name, value, attrs=None, renderer=None):
        choices = list(self.choices)
        if any(isinstance(label, list | tuple) for _, label in choices):
            return super().render(name, value, attrs, renderer)
        widget_attrs = self.build_attrs(self.attrs, attrs)
        if self.allow_multiple_selected:
            widget_attrs["multiple"] = True
        values = set(self.format_value(value))
        parts = [f'<select name="{escape(name)}"{_attrs(widget_attrs)}>']
        has_selected = False
        for option_value, label in choices:
            option = "" if option_value is None else str(option_value)
            selected = (not has_selected or self.allow_multiple_selected) and option in values
            has_selected |= selected
            parts.append(
                f'\n  <option value="{escape(option)}"{" selected" if selected else ""}>'
                f"{escape(str(label))}</option>\n"
            )
        parts.append("\n</select>")
        # html.escape is what django.utils.html.escape calls, without the lazy-string wrapper.
        return mark_safe("".join(parts))


def _attrs(attrs: dict[str, Any]) -> str:
    """HTML attributes as django/forms/widgets/attrs.html writes them, in order."""
    return "".join(
        f" {escape(key)}" if value is True else f' {escape(key)}="{escape(str(value))}"'
        for key, value in attrs.items()
        if value is not False
    )
