import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("telephony", "0011_extension_hot_desk"),
    ]

    operations = [
        migrations.CreateModel(
            name="SpeedDial",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("code", models.CharField(max_length=2)),
                ("number", models.CharField(max_length=32)),
                ("updated_at", models.DateTimeField(default=django.utils.timezone.now)),
                (
                    "extension",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="speed_dials",
                        to="telephony.extension",
                    ),
                ),
            ],
            options={
                "ordering": ["extension_id", "code"],
                "constraints": [
                    models.UniqueConstraint(
                        fields=("extension", "code"), name="speed_dial_code_unique"
                    )
                ],
            },
        ),
    ]
