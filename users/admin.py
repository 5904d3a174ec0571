"""The Django admin over User: the operators' raw fallback, and the console's speed baseline.

It writes only through `users.services`, so versions, history and write-once hold here too, and
asks `users.policy` what the signed-in admin may do, as the console and the API do.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, QuerySet
from django.http import HttpRequest
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.html import format_html
from django.utils.text import capfirst

from users import contract, policy, services, validators
from users.models import (
    CaseNote,
    FeatureFlag,
    ReasonCode,
    Role,
    StatusChange,
    User,
    UserVersion,
)
from users.selectors.reason_codes import active_reason_codes
from users.services import reason_codes as reason_code_services

# The model columns of each contract field the admin edits, in the registry's order.
COUNTER_ACCOUNT_FIELDS = contract.FIELDS["counter_account"].columns
FORM_FIELDS = tuple(column for f in contract.FIELDS.values() if f.input for column in f.columns)
# Fields of the form that are not model columns, and the record's read-only facts.
EXTRA_FIELDS = {
    "status": ("status_reason_code", "status_reason"),
    "feature_flags": (),
    "roles": (),
}
RECORD_FIELDS = (
    "version",
    "version_datetime",
    "version_authored_by_user",
    "creation_datetime",
    "deleted",
    "expected_version",
)


def fieldsets() -> tuple[tuple[str | None, dict[str, Any]], ...]:
    """One fieldset per contract group, then the version: derived from the registry."""
    sets: list[tuple[str | None, dict[str, Any]]] = []
    for group in contract.Group:
        names: list[str] = ["id"] if group == contract.Group.IDENTITY else []
        for f in contract.fields_in(group):
            if f.name in EXTRA_FIELDS:
                names += [f.name, *EXTRA_FIELDS[f.name]]
            elif f.input:
                names += f.columns
        if names:
            sets.append((contract.GROUP_LABELS[group], {"fields": tuple(names)}))
    sets.append(("Version", {"fields": RECORD_FIELDS}))
    return tuple(sets)


class UserAdminForm(forms.ModelForm):
    # Typed input is longer than what is stored (a formatted IBAN, a national phone number with
    # spaces); the services normalise it, so the form must not cut it at the column length.
    phone = forms.CharField(max_length=32, required=False)
    bank_account_number = forms.CharField(max_length=64, required=False)
    bank_id = forms.CharField(max_length=16, required=False)
    feature_flags = forms.MultipleChoiceField(
        choices=FeatureFlag.choices, required=False, widget=forms.CheckboxSelectMultiple
    )
    roles = forms.MultipleChoiceField(
        choices=Role.choices, required=False, widget=forms.CheckboxSelectMultiple
    )
    status_reason_code = forms.ChoiceField(
        required=False,
        label="Reason code",
        choices=lambda: [("", "—"), *((c.code, c.label) for c in active_reason_codes())],
        help_text="Required for a move into Verification failed or Inactive, and off the "
        "recommended flow.",
    )
    status_reason = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Why, in words: optional, required with the reason code Other.",
    )
    expected_version = forms.IntegerField(required=False, widget=forms.HiddenInput)

    class Meta:
        model = User
        fields = FORM_FIELDS

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        instance = self.instance
        if instance.pk and not instance._state.adding:
            self.fields["feature_flags"].initial = sorted(instance.flag_names())
            self.fields["roles"].initial = sorted(instance.role_names())
            self.fields["expected_version"].initial = instance.version
            for name in contract.WRITE_ONCE_FIELDS:
                if getattr(instance, name) and name in self.fields:
                    self.fields[name].disabled = True
                    self.fields[name].help_text = "Write-once: set, so it cannot be changed."

    def _post_clean(self) -> None:
        # Model validation is the services' job; running the model's own would check rules twice.
        pass

    def service_data(self) -> dict[str, Any]:
        data = {
            name: self.cleaned_data.get(name)
            for name in FORM_FIELDS
            if name not in COUNTER_ACCOUNT_FIELDS and name in self.cleaned_data
        }
        data["counter_account"] = {
            name: self.cleaned_data.get(name) or "" for name in COUNTER_ACCOUNT_FIELDS
        }
        data["feature_flags"] = self.cleaned_data.get("feature_flags") or []
        data["status_reason"] = self.cleaned_data.get("status_reason") or ""
        data["status_reason_code"] = self.cleaned_data.get("status_reason_code") or ""
        if self.instance.pk and not self.instance._state.adding:
            # A disabled field ignores what was posted; a crafted POST must still be refused.
            for name in contract.WRITE_ONCE_FIELDS:
                if self.fields[name].disabled:
                    posted = self.data.get(name)
                    data[name] = posted if posted is not None else getattr(self.instance, name)
        return data

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if self.errors:
            return cleaned
        try:
            services.clean_user_data(
                self.service_data(),
                user=self.instance
                if self.instance.pk and not self.instance._state.adding
                else None,
            )
        except ValidationError as exc:
            self._add_service_errors(exc)
        return cleaned

    def _add_service_errors(self, exc: ValidationError) -> None:
        for name, errors in contract.errors_by_target(exc, contract.column_for):
            self.add_error(name if name in self.fields else None, errors)


class HistoryInline(admin.TabularInline):
    """Read-only history rows; shown to whoever may read history, never edited here."""

    extra = 0
    can_delete = False

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return policy.may_view_history(request.user)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class UserVersionInline(HistoryInline):
    model = UserVersion
    fk_name = "user"
    fields = ("version", "created_at", "author", "changes")
    readonly_fields = fields
    ordering = ("-version",)


class StatusChangeInline(HistoryInline):
    model = StatusChange
    fk_name = "user"
    fields = (
        "changed_at",
        "from_status",
        "to_status",
        "changed_by",
        "reason_code",
        "reason",
        "off_flow",
    )
    readonly_fields = fields


class CaseNoteInline(HistoryInline):
    """Case notes (issue 14.2), read-only: notes are added in the console, never edited."""

    model = CaseNote
    fk_name = "user"
    fields = ("created_at", "author", "text")
    readonly_fields = fields
    ordering = ("-created_at", "-id")


@admin.register(User)
class UserAdmin(admin.ModelAdmin):
    form = UserAdminForm
    list_display = (
        "id",
        "email",
        "last_name",
        "first_name",
        "status",
        "deleted",
        "creation_datetime",
    )
    list_filter = ("status", "deleted", "residency_country")
    search_fields = ("id", "email", "external_id", "phone", "first_name", "last_name")
    readonly_fields = (
        "id",
        "version",
        "version_datetime",
        "version_authored_by_user",
        "creation_datetime",
        "deleted",
    )
    inlines = (StatusChangeInline, CaseNoteInline, UserVersionInline)
    actions = ("restore_selected",)
    fieldsets = fieldsets()

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None):
        """The list, refusing a NUL in its search or filters: PostgreSQL refuses NUL in text,
        so the query would fail (a 500) instead of finding nothing."""
        if validators.first_nul(request.GET) is not None:
            self.message_user(
                request,
                "The search or a filter contains a NUL character (\\x00); remove it.",
                messages.ERROR,
            )
            return redirect(request.path)
        return super().changelist_view(request, extra_context)

    # --- permissions: the policy's answers -------------------------------------------------------

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is None:
            return policy.sees_everyone(request.user)
        return policy.can_view(request.user, obj)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is None:
            return policy.edits_everyone(request.user)
        return policy.can_edit(request.user, obj)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return policy.may_create(request.user)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return policy.may_delete(request.user, obj)

    def has_restore_permission(self, request: HttpRequest) -> bool:
        return policy.may_restore(request.user)

    # --- writing ---------------------------------------------------------------------------------

    def save_model(
        self, request: HttpRequest, obj: User, form: UserAdminForm, change: bool
    ) -> None:
        data = form.service_data()
        roles = form.cleaned_data.get("roles") or []
        # The form always sends every part (status, flags, roles); as in the API, each part
        # that changes needs its own permission.
        if change:
            policy.check_update(request.user, obj, {**data, "roles": roles})
            saved = services.user_update(
                user=obj,
                data=data,
                actor=request.user,
                expected_version=form.cleaned_data.get("expected_version"),
            )
            proposed = services.proposed_changes(saved)
            if sorted(saved.role_names()) != sorted(roles):
                saved = services.user_set_roles(user=saved, roles=roles, actor=request.user)
                proposed += services.proposed_changes(saved)
            if proposed:
                # Four-eyes: guarded changes wait for a second person, in the admin too.
                kinds = ", ".join(request_.get_kind_display() for request_ in proposed)
                self.message_user(
                    request,
                    f"Waiting for approval by a second person: {kinds}. The other changes "
                    "were saved.",
                    messages.WARNING,
                )
        else:
            policy.check_create(request.user, {**data, "roles": roles})
            saved = services.user_create(data=data, actor=request.user, roles=roles)
        # The admin goes on with `obj` (messages, redirect): make it the stored row.
        obj.__dict__.update(saved.__dict__)

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        """Relations were written by the service; the inlines are read-only history.

        Nothing is saved here, but the admin's change message reads what each formset saved.
        """
        for formset in formsets:
            formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except services.StaleVersion as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return self.response_post_save_change(request, exc.current)
        except ValidationError as exc:
            # A race lost at the database (unique) after the form validated.
            self.message_user(request, "; ".join(exc.messages), messages.ERROR)
            from django.http import HttpResponseRedirect

            return HttpResponseRedirect(request.path)

    def get_deleted_objects(self, objs: Any, request: HttpRequest) -> tuple:
        """Deletion is soft: only the users change, their history stays. Say so on the page."""
        users = list(objs)
        listed = [
            format_html(
                '{}: <a href="{}">{}</a>',
                capfirst(User._meta.verbose_name),
                reverse("admin:users_user_change", args=[user.pk]),
                user,
            )
            for user in users
        ]
        perms_needed = set() if self.has_delete_permission(request) else {"user"}
        return listed, {User._meta.verbose_name_plural: len(users)}, perms_needed, []

    def delete_model(self, request: HttpRequest, obj: User) -> None:
        services.user_delete(user=obj, actor=request.user)

    def delete_queryset(self, request: HttpRequest, queryset: Any) -> None:
        # Each user by the policy's rule (not oneself, an admin only by an admin): the others
        # are named and left alone.
        for user in queryset:
            try:
                services.user_delete(user=user, actor=request.user)
            except PermissionDenied as exc:
                self.message_user(request, f"{user}: not deleted. {exc}", messages.ERROR)

    @admin.action(description="Restore selected users", permissions=["restore"])
    def restore_selected(self, request: HttpRequest, queryset: Any) -> None:
        restored = 0
        for user in queryset.filter(deleted=True):
            try:
                services.user_restore(user=user, actor=request.user)
            except PermissionDenied as exc:
                self.message_user(request, f"{user}: not restored. {exc}", messages.ERROR)
                continue
            restored += 1
        self.message_user(request, f"Restored {restored} user(s).")


class ReasonCodeForm(forms.ModelForm):
    class Meta:
        model = ReasonCode
        fields = ("code", "label", "active", "position")
        help_texts = {
            "code": "Upper-case letters, digits and _, e.g. DOCUMENT_EXPIRED; fixed once saved.",
            "active": "Only active codes are offered for moves; a retired code stays in the "
            "history.",
            "position": "Order in the move forms (smallest first).",
        }

    def _post_clean(self) -> None:
        # The service checks and saves (as the user form leaves it to the user services).
        pass

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if self.errors:
            return cleaned
        try:
            reason_code_services.clean_reason_code_data(
                code=cleaned.get("code") or self.instance.pk or "",
                label=cleaned.get("label") or "",
                position=cleaned.get("position") or 0,
                create=self.instance._state.adding,
            )
        except ValidationError as exc:
            for name, errors in exc.error_dict.items():
                self.add_error(name if name in self.fields else None, errors)
        return cleaned


@admin.register(ReasonCode)
class ReasonCodeAdmin(admin.ModelAdmin):
    """The reason codes moves take (issue 14.3), maintained by admins: add, rename, retire.

    A code some move used is never deleted (the history protects it): deactivate it instead.
    Writes go through `users.services.reason_codes`.
    """

    form = ReasonCodeForm
    list_display = ("code", "label", "active", "position", "uses")
    list_editable = ("label", "active", "position")
    list_filter = ("active",)
    search_fields = ("code", "label")
    ordering = ("position", "code")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        return ("code",) if obj is not None else ()

    def get_queryset(self, request: HttpRequest) -> QuerySet[ReasonCode]:
        return super().get_queryset(request).annotate(moves=Count("status_changes"))

    @admin.display(description="Moves with this code", ordering="moves")
    def uses(self, obj: ReasonCode) -> int:
        return obj.moves  # counted with the page's rows, not one query per row

    def has_module_permission(self, request: HttpRequest) -> bool:
        return policy.may_manage_reason_codes(request.user)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return policy.may_manage_reason_codes(request.user)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return policy.may_manage_reason_codes(request.user)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return policy.may_manage_reason_codes(request.user)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return policy.may_manage_reason_codes(request.user)

    def save_model(self, request: HttpRequest, obj: ReasonCode, form: Any, change: bool) -> None:
        data = form.cleaned_data
        if change:
            saved = reason_code_services.reason_code_update(
                code=obj.pk,
                label=data["label"],
                active=data["active"],
                position=data["position"],
                actor=request.user,
            )
        else:
            saved = reason_code_services.reason_code_create(
                code=data["code"],
                label=data["label"],
                active=data["active"],
                position=data["position"],
                actor=request.user,
            )
        obj.__dict__.update(saved.__dict__)

    def delete_model(self, request: HttpRequest, obj: ReasonCode) -> None:
        reason_code_services.reason_code_delete(code=obj.pk, actor=request.user)

    def delete_queryset(self, request: HttpRequest, queryset: Any) -> None:
        for code in queryset:
            reason_code_services.reason_code_delete(code=code.pk, actor=request.user)
