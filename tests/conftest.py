import pytest


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny test models gain nothing from threads, which only contend on a busy machine."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
