import pytest
from pyramid.config import Configurator


@pytest.fixture
def make_config():
    """Build an uncommitted Configurator that includes the add-on."""

    def make(settings=None, include=True):
        config = Configurator(settings=dict(settings or {}))
        if include:
            config.include('pyramid_immortus')
        return config

    return make
