from rest_framework import serializers

from events.models import OutboxEvent, WebhookDelivery, WebhookEndpoint


class WebhookSerializer(serializers.ModelSerializer):
    event_types = serializers.ListField(child=serializers.CharField(max_length=64))
    rotate_secret = serializers.BooleanField(required=False, write_only=True)

    class Meta:
        model = WebhookEndpoint
        fields: tuple[str, ...] = (
            "id",
            "url",
            "description",
            "event_types",
            "enabled",
            "rotate_secret",
            "created_at",
            "updated_at",
        )
        read_only_fields = ("created_at", "updated_at")


class WebhookWithSecretSerializer(WebhookSerializer):
    """The answer to a create (or a secret rotation): the signing secret, shown this once."""

    secret = serializers.CharField(read_only=True)

    class Meta(WebhookSerializer.Meta):
        fields = (*WebhookSerializer.Meta.fields, "secret")


class ReplaySerializer(serializers.Serializer):
    from_event_id = serializers.IntegerField(min_value=1)


class ReplayResultSerializer(serializers.Serializer):
    queued = serializers.IntegerField()


class DeliverySerializer(serializers.ModelSerializer):
    event_type = serializers.CharField(source="event.type", read_only=True)

    class Meta:
        model = WebhookDelivery
        fields = (
            "id",
            "endpoint",
            "event",
            "event_type",
            "state",
            "attempt",
            "status_code",
            "response_excerpt",
            "error",
            "next_attempt_at",
            "last_attempt_at",
            "delivered_at",
            "replay",
            "created_at",
        )


class OutboxEventSerializer(serializers.ModelSerializer):
    data = serializers.JSONField(source="payload")  # type: ignore[assignment]

    class Meta:
        model = OutboxEvent
        fields = ("id", "type", "topic", "occurred_at", "created_at", "data")
