"""Every extension that exists already gets its mailbox (new ones get it with the extension)."""

from django.db import migrations


def create_mailboxes(apps, schema_editor):
    Extension = apps.get_model("telephony", "Extension")
    Mailbox = apps.get_model("audio", "Mailbox")
    missing = Extension.objects.filter(mailbox__isnull=True).values_list("pk", flat=True)
    Mailbox.objects.bulk_create([Mailbox(extension_id=pk) for pk in missing], batch_size=1000)


class Migration(migrations.Migration):
    dependencies = [
        ("audio", "0001_initial"),
    ]

    operations = [
        migrations.RunPython(create_mailboxes, migrations.RunPython.noop),
    ]
