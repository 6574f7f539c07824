import pytest
import torch


@pytest.fixture(autouse=True)
def _threads():
    """Tests run on two cores; fix the thread count so results do not depend on the machine."""
    torch.set_num_threads(2)
    yield
