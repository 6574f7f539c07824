import pytest
import torch


@pytest.fixture(autouse=True)
def _threads():
    """Tests run on two cores; fix the thread count so results do not depend on the machine."""
    torch.set_num_threads(2)
    yield


@pytest.fixture(autouse=True, scope="session")
def _cache_in_a_temporary_folder(tmp_path_factory):
    """resolve test-writes the default cache folder: keep the tests' caches out of the checkout."""
    mp = pytest.MonkeyPatch()
    mp.setenv("POSINFO_CACHE", str(tmp_path_factory.mktemp("posinfo-cache")))
    yield
    mp.undo()
