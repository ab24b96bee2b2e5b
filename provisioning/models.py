"""Phone models, devices and templates (tenant schema)."""
