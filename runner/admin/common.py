"""What every admin page of hookrunner shares: history is read-only."""

from django.contrib import admin


class ReadOnly:
    """The log records what happened; nobody edits history."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        # Old history goes by `manage.py purge`, by age, never by hand.
        return False


class ReadOnlyAdmin(ReadOnly, admin.ModelAdmin):
    pass
