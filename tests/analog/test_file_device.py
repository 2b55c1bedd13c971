"""The tests' ALSA file-plugin device: a second folder in the same process gets its own files.

Test files share a worker process, and PortAudio reads ALSA's configuration
once: without starting it again, the second file's line would capture from
and play into the first file's folder.
"""

from __future__ import annotations

import numpy as np
import pytest

from appliance.analog.audio import FRAME, RATE
from appliance.analog.bench import file_device

pytestmark = [pytest.mark.slow]


def _one_frame_through_line(mark: int) -> None:
    import sounddevice as sd

    stream = sd.Stream(device="line", samplerate=RATE, channels=1, dtype="int16", blocksize=FRAME)
    stream.start()
    try:
        stream.read(FRAME)
        for _ in range(10):
            stream.write(np.full((FRAME, 1), mark, dtype=np.int16))
    finally:
        stream.stop()
        stream.close()


def test_a_second_folder_in_the_same_process_gets_the_line(tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    for folder in (first, second):
        folder.mkdir()
        (folder / "capture.raw").write_bytes(bytes(2 * RATE))
    file_device(first)
    _one_frame_through_line(1111)
    _, play = file_device(second)
    _one_frame_through_line(2222)
    written = np.frombuffer(play.read_bytes(), dtype=np.int16)
    assert written.size and set(written.tolist()) <= {2222, 0}
    assert 2222 in written
    assert 2222 not in np.frombuffer((first / "play.raw").read_bytes(), dtype=np.int16)


def test_the_line_is_found_after_a_pjsua2_library_ran_in_the_same_process(tmp_path):
    """pjmedia's ALSA device reads ALSA's configuration first; the test files' line must still be there."""
    from appliance.engine.core import EngineConfig, EngineThread
    from tests.conftest import free_port

    engine = EngineThread(EngineConfig(sip_port=free_port(), log_level=1))
    engine.start()
    engine.stop()
    (tmp_path / "capture.raw").write_bytes(bytes(2 * RATE))
    _, play = file_device(tmp_path)
    _one_frame_through_line(3333)
    assert 3333 in np.frombuffer(play.read_bytes(), dtype=np.int16)
