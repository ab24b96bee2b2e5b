import pytest


@pytest.fixture
def seeds(world):
    """Make one row of any resource the API exposes: ``seeds("extensions", Owner(...))``."""
    from tests.api.resources import Seeds

    made = Seeds()
    yield made
    made.close()
