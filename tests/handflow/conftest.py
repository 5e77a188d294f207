import pytest

from handflow.synth.mano import write_synthetic_mano


@pytest.fixture(scope="session")
def mano_dir(tmp_path_factory):
    """A folder ``<tmp>/mano`` holding the synthetic MANO_RIGHT.pkl / MANO_LEFT.pkl (seed 0)."""
    return write_synthetic_mano(tmp_path_factory.mktemp("models") / "mano", seed=0)
