import pytest


@pytest.fixture
def media(settings, tmp_path):
    """A MEDIA_ROOT of the test's own (tenant files are written and removed in it)."""
    root = tmp_path / "media"
    root.mkdir()
    settings.MEDIA_ROOT = root
    return root


@pytest.fixture
def recording_dirs(settings, tmp_path):
    """Recording directories of the test's own: where rtpengine writes (accepted as
    sources), the work directory and the platform's local storage."""
    from types import SimpleNamespace

    dirs = SimpleNamespace(
        source=tmp_path / "rtpengine", work=tmp_path / "work", local=tmp_path / "stored"
    )
    for d in vars(dirs).values():
        d.mkdir()
    settings.PBX_RECORDING_SOURCE_DIRS = [str(dirs.source)]
    settings.PBX_RECORDING_WORK_DIR = str(dirs.work)
    settings.PBX_RECORDING_STORAGE = {"kind": "local", "location": str(dirs.local)}
    return dirs


@pytest.fixture(scope="module")
def rtpengine_recorder(tmp_path_factory):
    """A real rtpengine recording every call it is told to as pcap in its ``recording_dir``."""
    from tests.sip.pjphone import RtpEngineProcess

    folder = tmp_path_factory.mktemp("rtpengine-recordings")
    engine = RtpEngineProcess(recording_dir=str(folder))
    engine.recording_dir = str(folder)
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def s3_server():
    from .storage_servers import MotoS3

    server = MotoS3()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def azurite():
    from .storage_servers import Azurite

    server = Azurite()
    server.start()
    yield server
    server.stop()
